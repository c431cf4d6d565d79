"""Sparse-reward QD: random search, novelty search, MAP-Elites, NSGA-II, CMA-ES, SERENE (faithful and parallel),
STAX, STAX-P and STAX-NT on curling, redundant_arm and hard_maze at one budget in evaluations (the SERENE / STAX
comparison).

Results (jax 0.10.2, XLA:CPU, 2 CPU cores, load average 0.9-2.5 during the run; ``python
benchmarks/sparse_reward.py --quick``: 16,000 evaluations on curling and redundant_arm, 4,000 on hard_maze with
1000-step episodes, 2 seeds; the STAX rows on curling only, 10 epochs at most per AE training). Total 505 s
(8.4 min), under the 15-minute bound. Mean over seeds [min, max]; ``per area``: best reward per area (mean);
``evals/area``: emitter evaluations per area (mean); wall: steady s per run; comp: first seed minus steady
(compilation, s); AE %: share of the wall time in AE training (``1 - wall(stax_nt) / wall``):

    algorithm task          areas [min,max] best rew    [min, max]             per area gt cov   evals/area (SERENE)   evals  wall s comp s AE %
    random    curling         2.0 [2,2]        0.969 [0.94, 0.99]            0.89 0.97  0.595                     -   16000     0.6    3.2    0
    ns        curling         2.0 [2,2]        0.975 [0.97, 0.98]            0.97 0.94  0.950                     -   15900     1.5    4.4    0
    me        curling         2.0 [2,2]        0.984 [0.98, 0.99]            0.97 0.98  0.901                     -   16000     0.7    3.6    0
    nsga2     curling         2.0 [2,2]        0.986 [0.99, 0.99]            0.99 0.98  0.654                     -   15900     1.6    4.9    0
    cmaes     curling         1.0 [1,1]        0.990 [0.99, 0.99]            0.49 0.50  0.237                     -   15996     3.7    7.4    0
    serene    curling         2.0 [2,2]        0.984 [0.98, 0.99]            0.96 0.95  0.851              7104 798   16002     7.0    6.5    0
    serene_parallel curling         2.0 [2,2]        0.970 [0.96, 0.98]            0.97 0.97  0.848             1485 6438   16023     6.1    6.1    0
    stax      curling         2.0 [2,2]        0.955 [0.95, 0.96]            0.93 0.95  0.353             5058 2844   16002    44.0   15.2   64
    stax_p    curling         2.0 [2,2]        0.979 [0.97, 0.99]            0.96 0.93  0.536             5592 2310   16002    41.0   18.5   61
    stax_nt   curling         2.0 [2,2]        0.966 [0.96, 0.97]            0.95 0.95  0.378             3186 4719   16005    15.8   15.8    0
    random    redundant_arm   1.0 [1,1]        0.910 [0.87, 0.95]       0.00 0.91 0.00  0.273                     -   16000     0.3    6.7    0
    ns        redundant_arm   3.0 [3,3]        0.925 [0.92, 0.93]       0.88 0.93 0.70  0.576                     -   15900     1.0    9.7    0
    me        redundant_arm   1.0 [1,1]        0.965 [0.95, 0.98]       0.00 0.96 0.00  0.369                     -   16000     0.3    6.7    0
    nsga2     redundant_arm   1.5 [1,2]        0.998 [1.00, 1.00]       0.50 0.99 0.00  0.269                     -   15900     1.1   10.1    0
    cmaes     redundant_arm   0.0 [0,0]        0.000 [0.00, 0.00]       0.00 0.00 0.00  0.059                     -   15996     4.4    9.9    0
    serene    redundant_arm   2.0 [1,3]        0.983 [0.98, 0.99]       0.47 0.98 0.45  0.457         231 6672 1005   16008     8.6   13.3    0
    serene_parallel redundant_arm   2.0 [2,2]        0.983 [0.98, 0.99]       0.01 0.98 0.14  0.410              0 7944 0   16044     6.0   10.7    0
    random    hard_maze       0.0 [0,0]        0.000 [0.00, 0.00]            0.00 0.00  0.154                     -    4000     1.3    2.3    0
    ns        hard_maze       0.5 [0,1]        0.084 [0.00, 0.17]            0.00 0.08  0.204                     -    3900     1.4    2.6    0
    me        hard_maze       0.0 [0,0]        0.000 [0.00, 0.00]            0.00 0.00  0.193                     -    4000     1.2    1.8    0
    nsga2     hard_maze       0.5 [0,1]        0.099 [0.00, 0.20]            0.00 0.10  0.208                     -    3900     1.5    2.9    0
    cmaes     hard_maze       0.0 [0,0]        0.000 [0.00, 0.00]            0.00 0.00  0.060                     -    3996     5.3    6.1    0
    serene    hard_maze       0.5 [0,1]        0.466 [0.00, 0.93]            0.00 0.47  0.207                 0 501    4101     3.2    6.4    0
    serene_parallel hard_maze       0.5 [0,1]        0.466 [0.00, 0.93]            0.00 0.47  0.208                 0 504    4104     2.9    6.9    0
    {"random_curling_areas_found": 2.0, "random_curling_areas_found_min": 2.0, "random_curling_areas_found_max": 2.0, "random_curling_best_reward": 0.9695, "random_curling_best_reward_min": 0.9448, "random_curling_best_reward_max": 0.9941, "random_curling_gt_coverage": 0.5946, "random_curling_gt_coverage_min": 0.592, "random_curling_gt_coverage_max": 0.5972, "random_curling_best_reward_area_0": 0.8915, "random_curling_best_reward_area_1": 0.9695, "random_curling_evaluations": 16000, "random_curling_wall_s": 0.6155, "random_curling_compile_s": 3.2431, "random_curling_train_share": 0.0, "ns_curling_areas_found": 2.0, "ns_curling_areas_found_min": 2.0, "ns_curling_areas_found_max": 2.0, "ns_curling_best_reward": 0.9754, "ns_curling_best_reward_min": 0.9691, "ns_curling_best_reward_max": 0.9818, "ns_curling_gt_coverage": 0.9504, "ns_curling_gt_coverage_min": 0.942, "ns_curling_gt_coverage_max": 0.9588, "ns_curling_best_reward_area_0": 0.9655, "ns_curling_best_reward_area_1": 0.9363, "ns_curling_evaluations": 15900, "ns_curling_wall_s": 1.5423, "ns_curling_compile_s": 4.4424, "ns_curling_train_share": 0.0, "me_curling_areas_found": 2.0, "me_curling_areas_found_min": 2.0, "me_curling_areas_found_max": 2.0, "me_curling_best_reward": 0.9841, "me_curling_best_reward_min": 0.9799, "me_curling_best_reward_max": 0.9883, "me_curling_gt_coverage": 0.901, "me_curling_gt_coverage_min": 0.8908, "me_curling_gt_coverage_max": 0.9112, "me_curling_best_reward_area_0": 0.9731, "me_curling_best_reward_area_1": 0.9841, "me_curling_evaluations": 16000, "me_curling_wall_s": 0.7365, "me_curling_compile_s": 3.622, "me_curling_train_share": 0.0, "nsga2_curling_areas_found": 2.0, "nsga2_curling_areas_found_min": 2.0, "nsga2_curling_areas_found_max": 2.0, "nsga2_curling_best_reward": 0.9861, "nsga2_curling_best_reward_min": 0.9852, "nsga2_curling_best_reward_max": 0.9871, "nsga2_curling_gt_coverage": 0.6538, "nsga2_curling_gt_coverage_min": 0.5856, "nsga2_curling_gt_coverage_max": 0.722, "nsga2_curling_best_reward_area_0": 0.9861, "nsga2_curling_best_reward_area_1": 0.9793, "nsga2_curling_evaluations": 15900, "nsga2_curling_wall_s": 1.6191, "nsga2_curling_compile_s": 4.9186, "nsga2_curling_train_share": 0.0, "cmaes_curling_areas_found": 1.0, "cmaes_curling_areas_found_min": 1.0, "cmaes_curling_areas_found_max": 1.0, "cmaes_curling_best_reward": 0.9902, "cmaes_curling_best_reward_min": 0.9895, "cmaes_curling_best_reward_max": 0.9909, "cmaes_curling_gt_coverage": 0.2366, "cmaes_curling_gt_coverage_min": 0.1172, "cmaes_curling_gt_coverage_max": 0.356, "cmaes_curling_best_reward_area_0": 0.4947, "cmaes_curling_best_reward_area_1": 0.4954, "cmaes_curling_evaluations": 15996, "cmaes_curling_wall_s": 3.7136, "cmaes_curling_compile_s": 7.4401, "cmaes_curling_train_share": 0.0, "serene_curling_areas_found": 2.0, "serene_curling_areas_found_min": 2.0, "serene_curling_areas_found_max": 2.0, "serene_curling_best_reward": 0.9843, "serene_curling_best_reward_min": 0.9787, "serene_curling_best_reward_max": 0.9899, "serene_curling_gt_coverage": 0.8506, "serene_curling_gt_coverage_min": 0.83, "serene_curling_gt_coverage_max": 0.8712, "serene_curling_best_reward_area_0": 0.956, "serene_curling_area_evaluations_0": 7104.0, "serene_curling_best_reward_area_1": 0.95, "serene_curling_area_evaluations_1": 798.0, "serene_curling_evaluations": 16002, "serene_curling_wall_s": 6.9613, "serene_curling_compile_s": 6.4921, "serene_curling_train_share": 0.0, "serene_parallel_curling_areas_found": 2.0, "serene_parallel_curling_areas_found_min": 2.0, "serene_parallel_curling_areas_found_max": 2.0, "serene_parallel_curling_best_reward": 0.9705, "serene_parallel_curling_best_reward_min": 0.9599, "serene_parallel_curling_best_reward_max": 0.9811, "serene_parallel_curling_gt_coverage": 0.848, "serene_parallel_curling_gt_coverage_min": 0.8296, "serene_parallel_curling_gt_coverage_max": 0.8664, "serene_parallel_curling_best_reward_area_0": 0.9696, "serene_parallel_curling_area_evaluations_0": 1485.0, "serene_parallel_curling_best_reward_area_1": 0.9666, "serene_parallel_curling_area_evaluations_1": 6438.0, "serene_parallel_curling_evaluations": 16023, "serene_parallel_curling_wall_s": 6.1189, "serene_parallel_curling_compile_s": 6.1481, "serene_parallel_curling_train_share": 0.0, "stax_curling_areas_found": 2.0, "stax_curling_areas_found_min": 2.0, "stax_curling_areas_found_max": 2.0, "stax_curling_best_reward": 0.9546, "stax_curling_best_reward_min": 0.9527, "stax_curling_best_reward_max": 0.9565, "stax_curling_gt_coverage": 0.3534, "stax_curling_gt_coverage_min": 0.314, "stax_curling_gt_coverage_max": 0.3928, "stax_curling_best_reward_area_0": 0.9345, "stax_curling_area_evaluations_0": 5058.0, "stax_curling_best_reward_area_1": 0.9544, "stax_curling_area_evaluations_1": 2844.0, "stax_curling_evaluations": 16002, "stax_curling_wall_s": 44.0214, "stax_curling_compile_s": 15.239, "stax_curling_train_share": 0.6401, "stax_curling_ae_trainings": 3.0, "stax_p_curling_areas_found": 2.0, "stax_p_curling_areas_found_min": 2.0, "stax_p_curling_areas_found_max": 2.0, "stax_p_curling_best_reward": 0.9793, "stax_p_curling_best_reward_min": 0.9697, "stax_p_curling_best_reward_max": 0.9888, "stax_p_curling_gt_coverage": 0.5356, "stax_p_curling_gt_coverage_min": 0.4932, "stax_p_curling_gt_coverage_max": 0.578, "stax_p_curling_best_reward_area_0": 0.9629, "stax_p_curling_area_evaluations_0": 5592.0, "stax_p_curling_best_reward_area_1": 0.9257, "stax_p_curling_area_evaluations_1": 2310.0, "stax_p_curling_evaluations": 16002, "stax_p_curling_wall_s": 41.0104, "stax_p_curling_compile_s": 18.506, "stax_p_curling_train_share": 0.6137, "stax_p_curling_ae_trainings": 3.0, "stax_nt_curling_areas_found": 2.0, "stax_nt_curling_areas_found_min": 2.0, "stax_nt_curling_areas_found_max": 2.0, "stax_nt_curling_best_reward": 0.9662, "stax_nt_curling_best_reward_min": 0.9645, "stax_nt_curling_best_reward_max": 0.968, "stax_nt_curling_gt_coverage": 0.3778, "stax_nt_curling_gt_coverage_min": 0.3264, "stax_nt_curling_gt_coverage_max": 0.4292, "stax_nt_curling_best_reward_area_0": 0.9453, "stax_nt_curling_area_evaluations_0": 3186.0, "stax_nt_curling_best_reward_area_1": 0.9485, "stax_nt_curling_area_evaluations_1": 4719.0, "stax_nt_curling_evaluations": 16005, "stax_nt_curling_wall_s": 15.8441, "stax_nt_curling_compile_s": 15.7865, "stax_nt_curling_train_share": 0.0, "stax_nt_curling_ae_trainings": 0.0, "random_redundant_arm_areas_found": 1.0, "random_redundant_arm_areas_found_min": 1.0, "random_redundant_arm_areas_found_max": 1.0, "random_redundant_arm_best_reward": 0.9102, "random_redundant_arm_best_reward_min": 0.8725, "random_redundant_arm_best_reward_max": 0.948, "random_redundant_arm_gt_coverage": 0.2732, "random_redundant_arm_gt_coverage_min": 0.272, "random_redundant_arm_gt_coverage_max": 0.2744, "random_redundant_arm_best_reward_area_0": 0.0, "random_redundant_arm_best_reward_area_1": 0.9102, "random_redundant_arm_best_reward_area_2": 0.0, "random_redundant_arm_evaluations": 16000, "random_redundant_arm_wall_s": 0.2805, "random_redundant_arm_compile_s": 6.7444, "random_redundant_arm_train_share": 0.0, "ns_redundant_arm_areas_found": 3.0, "ns_redundant_arm_areas_found_min": 3.0, "ns_redundant_arm_areas_found_max": 3.0, "ns_redundant_arm_best_reward": 0.9253, "ns_redundant_arm_best_reward_min": 0.9201, "ns_redundant_arm_best_reward_max": 0.9305, "ns_redundant_arm_gt_coverage": 0.5758, "ns_redundant_arm_gt_coverage_min": 0.5152, "ns_redundant_arm_gt_coverage_max": 0.6364, "ns_redundant_arm_best_reward_area_0": 0.8822, "ns_redundant_arm_best_reward_area_1": 0.9253, "ns_redundant_arm_best_reward_area_2": 0.6951, "ns_redundant_arm_evaluations": 15900, "ns_redundant_arm_wall_s": 1.0094, "ns_redundant_arm_compile_s": 9.6575, "ns_redundant_arm_train_share": 0.0, "me_redundant_arm_areas_found": 1.0, "me_redundant_arm_areas_found_min": 1.0, "me_redundant_arm_areas_found_max": 1.0, "me_redundant_arm_best_reward": 0.9647, "me_redundant_arm_best_reward_min": 0.9474, "me_redundant_arm_best_reward_max": 0.982, "me_redundant_arm_gt_coverage": 0.3688, "me_redundant_arm_gt_coverage_min": 0.3608, "me_redundant_arm_gt_coverage_max": 0.3768, "me_redundant_arm_best_reward_area_0": 0.0, "me_redundant_arm_best_reward_area_1": 0.9647, "me_redundant_arm_best_reward_area_2": 0.0, "me_redundant_arm_evaluations": 16000, "me_redundant_arm_wall_s": 0.3451, "me_redundant_arm_compile_s": 6.696, "me_redundant_arm_train_share": 0.0, "nsga2_redundant_arm_areas_found": 1.5, "nsga2_redundant_arm_areas_found_min": 1.0, "nsga2_redundant_arm_areas_found_max": 2.0, "nsga2_redundant_arm_best_reward": 0.9977, "nsga2_redundant_arm_best_reward_min": 0.9961, "nsga2_redundant_arm_best_reward_max": 0.9993, "nsga2_redundant_arm_gt_coverage": 0.2692, "nsga2_redundant_arm_gt_coverage_min": 0.196, "nsga2_redundant_arm_gt_coverage_max": 0.3424, "nsga2_redundant_arm_best_reward_area_0": 0.4997, "nsga2_redundant_arm_best_reward_area_1": 0.9949, "nsga2_redundant_arm_best_reward_area_2": 0.0, "nsga2_redundant_arm_evaluations": 15900, "nsga2_redundant_arm_wall_s": 1.1217, "nsga2_redundant_arm_compile_s": 10.0769, "nsga2_redundant_arm_train_share": 0.0, "cmaes_redundant_arm_areas_found": 0.0, "cmaes_redundant_arm_areas_found_min": 0.0, "cmaes_redundant_arm_areas_found_max": 0.0, "cmaes_redundant_arm_best_reward": 0.0, "cmaes_redundant_arm_best_reward_min": 0.0, "cmaes_redundant_arm_best_reward_max": 0.0, "cmaes_redundant_arm_gt_coverage": 0.0592, "cmaes_redundant_arm_gt_coverage_min": 0.0388, "cmaes_redundant_arm_gt_coverage_max": 0.0796, "cmaes_redundant_arm_best_reward_area_0": 0.0, "cmaes_redundant_arm_best_reward_area_1": 0.0, "cmaes_redundant_arm_best_reward_area_2": 0.0, "cmaes_redundant_arm_evaluations": 15996, "cmaes_redundant_arm_wall_s": 4.4391, "cmaes_redundant_arm_compile_s": 9.9086, "cmaes_redundant_arm_train_share": 0.0, "serene_redundant_arm_areas_found": 2.0, "serene_redundant_arm_areas_found_min": 1.0, "serene_redundant_arm_areas_found_max": 3.0, "serene_redundant_arm_best_reward": 0.9827, "serene_redundant_arm_best_reward_min": 0.9794, "serene_redundant_arm_best_reward_max": 0.9859, "serene_redundant_arm_gt_coverage": 0.4572, "serene_redundant_arm_gt_coverage_min": 0.3884, "serene_redundant_arm_gt_coverage_max": 0.526, "serene_redundant_arm_best_reward_area_0": 0.4707, "serene_redundant_arm_area_evaluations_0": 231.0, "serene_redundant_arm_best_reward_area_1": 0.9827, "serene_redundant_arm_area_evaluations_1": 6672.0, "serene_redundant_arm_best_reward_area_2": 0.4536, "serene_redundant_arm_area_evaluations_2": 1005.0, "serene_redundant_arm_evaluations": 16008, "serene_redundant_arm_wall_s": 8.5566, "serene_redundant_arm_compile_s": 13.2945, "serene_redundant_arm_train_share": 0.0, "serene_parallel_redundant_arm_areas_found": 2.0, "serene_parallel_redundant_arm_areas_found_min": 2.0, "serene_parallel_redundant_arm_areas_found_max": 2.0, "serene_parallel_redundant_arm_best_reward": 0.9832, "serene_parallel_redundant_arm_best_reward_min": 0.9773, "serene_parallel_redundant_arm_best_reward_max": 0.9891, "serene_parallel_redundant_arm_gt_coverage": 0.4102, "serene_parallel_redundant_arm_gt_coverage_min": 0.3868, "serene_parallel_redundant_arm_gt_coverage_max": 0.4336, "serene_parallel_redundant_arm_best_reward_area_0": 0.0061, "serene_parallel_redundant_arm_area_evaluations_0": 0.0, "serene_parallel_redundant_arm_best_reward_area_1": 0.9832, "serene_parallel_redundant_arm_area_evaluations_1": 7944.0, "serene_parallel_redundant_arm_best_reward_area_2": 0.1378, "serene_parallel_redundant_arm_area_evaluations_2": 0.0, "serene_parallel_redundant_arm_evaluations": 16044, "serene_parallel_redundant_arm_wall_s": 5.9868, "serene_parallel_redundant_arm_compile_s": 10.7485, "serene_parallel_redundant_arm_train_share": 0.0, "random_hard_maze_areas_found": 0.0, "random_hard_maze_areas_found_min": 0.0, "random_hard_maze_areas_found_max": 0.0, "random_hard_maze_best_reward": 0.0, "random_hard_maze_best_reward_min": 0.0, "random_hard_maze_best_reward_max": 0.0, "random_hard_maze_gt_coverage": 0.1542, "random_hard_maze_gt_coverage_min": 0.152, "random_hard_maze_gt_coverage_max": 0.1564, "random_hard_maze_best_reward_area_0": 0.0, "random_hard_maze_best_reward_area_1": 0.0, "random_hard_maze_evaluations": 4000, "random_hard_maze_wall_s": 1.284, "random_hard_maze_compile_s": 2.2964, "random_hard_maze_train_share": 0.0, "ns_hard_maze_areas_found": 0.5, "ns_hard_maze_areas_found_min": 0.0, "ns_hard_maze_areas_found_max": 1.0, "ns_hard_maze_best_reward": 0.084, "ns_hard_maze_best_reward_min": 0.0, "ns_hard_maze_best_reward_max": 0.168, "ns_hard_maze_gt_coverage": 0.204, "ns_hard_maze_gt_coverage_min": 0.1764, "ns_hard_maze_gt_coverage_max": 0.2316, "ns_hard_maze_best_reward_area_0": 0.0, "ns_hard_maze_best_reward_area_1": 0.084, "ns_hard_maze_evaluations": 3900, "ns_hard_maze_wall_s": 1.3699, "ns_hard_maze_compile_s": 2.6105, "ns_hard_maze_train_share": 0.0, "me_hard_maze_areas_found": 0.0, "me_hard_maze_areas_found_min": 0.0, "me_hard_maze_areas_found_max": 0.0, "me_hard_maze_best_reward": 0.0, "me_hard_maze_best_reward_min": 0.0, "me_hard_maze_best_reward_max": 0.0, "me_hard_maze_gt_coverage": 0.1934, "me_hard_maze_gt_coverage_min": 0.1868, "me_hard_maze_gt_coverage_max": 0.2, "me_hard_maze_best_reward_area_0": 0.0, "me_hard_maze_best_reward_area_1": 0.0, "me_hard_maze_evaluations": 4000, "me_hard_maze_wall_s": 1.2438, "me_hard_maze_compile_s": 1.7639, "me_hard_maze_train_share": 0.0, "nsga2_hard_maze_areas_found": 0.5, "nsga2_hard_maze_areas_found_min": 0.0, "nsga2_hard_maze_areas_found_max": 1.0, "nsga2_hard_maze_best_reward": 0.0995, "nsga2_hard_maze_best_reward_min": 0.0, "nsga2_hard_maze_best_reward_max": 0.199, "nsga2_hard_maze_gt_coverage": 0.2076, "nsga2_hard_maze_gt_coverage_min": 0.1764, "nsga2_hard_maze_gt_coverage_max": 0.2388, "nsga2_hard_maze_best_reward_area_0": 0.0, "nsga2_hard_maze_best_reward_area_1": 0.0995, "nsga2_hard_maze_evaluations": 3900, "nsga2_hard_maze_wall_s": 1.4655, "nsga2_hard_maze_compile_s": 2.8704, "nsga2_hard_maze_train_share": 0.0, "cmaes_hard_maze_areas_found": 0.0, "cmaes_hard_maze_areas_found_min": 0.0, "cmaes_hard_maze_areas_found_max": 0.0, "cmaes_hard_maze_best_reward": 0.0, "cmaes_hard_maze_best_reward_min": 0.0, "cmaes_hard_maze_best_reward_max": 0.0, "cmaes_hard_maze_gt_coverage": 0.0598, "cmaes_hard_maze_gt_coverage_min": 0.042, "cmaes_hard_maze_gt_coverage_max": 0.0776, "cmaes_hard_maze_best_reward_area_0": 0.0, "cmaes_hard_maze_best_reward_area_1": 0.0, "cmaes_hard_maze_evaluations": 3996, "cmaes_hard_maze_wall_s": 5.2778, "cmaes_hard_maze_compile_s": 6.0934, "cmaes_hard_maze_train_share": 0.0, "serene_hard_maze_areas_found": 0.5, "serene_hard_maze_areas_found_min": 0.0, "serene_hard_maze_areas_found_max": 1.0, "serene_hard_maze_best_reward": 0.4663, "serene_hard_maze_best_reward_min": 0.0, "serene_hard_maze_best_reward_max": 0.9325, "serene_hard_maze_gt_coverage": 0.2066, "serene_hard_maze_gt_coverage_min": 0.1824, "serene_hard_maze_gt_coverage_max": 0.2308, "serene_hard_maze_best_reward_area_0": 0.0, "serene_hard_maze_area_evaluations_0": 0.0, "serene_hard_maze_best_reward_area_1": 0.4663, "serene_hard_maze_area_evaluations_1": 501.0, "serene_hard_maze_evaluations": 4101, "serene_hard_maze_wall_s": 3.2315, "serene_hard_maze_compile_s": 6.4451, "serene_hard_maze_train_share": 0.0, "serene_parallel_hard_maze_areas_found": 0.5, "serene_parallel_hard_maze_areas_found_min": 0.0, "serene_parallel_hard_maze_areas_found_max": 1.0, "serene_parallel_hard_maze_best_reward": 0.4663, "serene_parallel_hard_maze_best_reward_min": 0.0, "serene_parallel_hard_maze_best_reward_max": 0.9325, "serene_parallel_hard_maze_gt_coverage": 0.2078, "serene_parallel_hard_maze_gt_coverage_min": 0.1824, "serene_parallel_hard_maze_gt_coverage_max": 0.2332, "serene_parallel_hard_maze_best_reward_area_0": 0.0, "serene_parallel_hard_maze_area_evaluations_0": 0.0, "serene_parallel_hard_maze_best_reward_area_1": 0.4663, "serene_parallel_hard_maze_area_evaluations_1": 504.0, "serene_parallel_hard_maze_evaluations": 4104, "serene_parallel_hard_maze_wall_s": 2.8763, "serene_parallel_hard_maze_compile_s": 6.9314, "serene_parallel_hard_maze_train_share": 0.0, "budget": 16000, "hard_maze_budget": 4000, "hard_maze_steps": 1000, "seeds": 2, "quick": true, "parallel_slots": 8, "plots": "/tmp/srq3", "total_s": 505.2, "load": [1.66, 1.79, 2.53]}

What it shows, honestly:

- **Reward areas found**: at these budgets SERENE does **not** find more areas than plain novelty search: NS finds
  all 3 redundant_arm areas in both seeds, SERENE 3 and 1 (parallel: 2 and 2); on curling every method but CMA-ES
  finds both areas (the task is easy at 16k evaluations: random search does too); on hard_maze (4,000 evaluations
  of 1000 steps) NS, NSGA-II and both SERENE find one area in one seed of two, the others none.
- **Best reward**: SERENE's emitters raise the reward of the areas they exploit (arm area 1: 0.98 vs NS 0.93,
  random 0.91; hard_maze: 0.93 in the seed that found it, vs 0.17 for NS), but ME and NSGA-II reach as high or
  higher on curling and the arm (NSGA-II 0.998 on arm area 1). The faithful mode spends most emitter evaluations
  on one area (curling: 7,104 on area 0, 798 on area 1); areas found late get few.
- **STAX** (no designed descriptor) finds both curling areas with rewards 0.93-0.96 (STAX-P 0.96 / 0.93), like
  SERENE on the ground truth, with lower exploration coverage (0.35-0.54 vs 0.85): the learned space is not the
  ground truth. STAX-P covers more than STAX and STAX-NT (0.54 vs 0.35 / 0.38). AE training is 61-64% of STAX's
  wall time on this CPU at 10 epochs per training (STAX's 100-epoch cap with early stopping costs more).
- **Coverage**: NS is ahead everywhere (curling 0.95, arm 0.58); SERENE's exploration coverage is lower (0.85,
  0.46) since half its budget goes to emitters.
- **Budget**: these are 16k / 4k evaluations, 3-30% of the papers' budgets (100k-500k); the comparison at the
  papers' budget is the default run (200k, 3 seeds, STAX on every task), not measured here.
- **Wall time**: SERENE faithful 7.0 s per 16k curling evaluations, parallel (8 slots) 6.1 s, NS 1.5 s: SERENE's
  exploitation iterations evaluate 12 agents each (a 12-agent curling rollout alone is about 2 ms; an iteration
  about 10 ms with 16k-slot archives, of which XLA spends several ms copying the archives' genotype arrays
  through the phase switch). An earlier run with the same seeds at load 6-11, before the faithful mode's Pareto
  choice was made lazy, took 45.6 s (faithful) and 14.9 s (parallel), with the same outcomes bit for bit.

``--serene-full`` (measured in the same session, load 1.2-1.7: the run keeps about one of the two cores busy):
SERENE faithful on curling, **500,136 evaluations in 6.4 min** wall (compilation included), 2/2 reward areas,
best reward 0.998, ground-truth coverage 0.9996, emitter evaluations 163,104 on area 0 and 87,732 on area 1. The
original implementation needs about 4 h of one core for this run (28.5 ms per curling evaluation alone, section 5
of ``sparse_reward_qd.md``): about 37x faster. Its JSON line:

    {"serene_full_curling_budget": 500000, "serene_full_curling_evaluations": 500136, "serene_full_curling_wall_min": 6.44, "serene_full_curling_areas_found": 2.0, "serene_full_curling_best_reward": 0.9976, "serene_full_curling_gt_coverage": 0.9996, "serene_full_curling_area_evaluations_0": 163104.0, "serene_full_curling_area_evaluations_1": 87732.0, "total_s": 386.8, "load": [1.2, 1.35, 2.05]}

Last JSON line of that run:

    {"random_curling_areas_found": 2.0, "random_curling_areas_found_min": 2.0, "random_curling_areas_found_max": 2.0, "random_curling_best_reward": 0.9695, "random_curling_best_reward_min": 0.9448, "random_curling_best_reward_max": 0.9941, "random_curling_gt_coverage": 0.5946, "random_curling_gt_coverage_min": 0.592, "random_curling_gt_coverage_max": 0.5972, "random_curling_best_reward_area_0": 0.8915, "random_curling_best_reward_area_1": 0.9695, "random_curling_evaluations": 16000, "random_curling_wall_s": 0.6155, "random_curling_compile_s": 3.2431, "random_curling_train_share": 0.0, "ns_curling_areas_found": 2.0, "ns_curling_areas_found_min": 2.0, "ns_curling_areas_found_max": 2.0, "ns_curling_best_reward": 0.9754, "ns_curling_best_reward_min": 0.9691, "ns_curling_best_reward_max": 0.9818, "ns_curling_gt_coverage": 0.9504, "ns_curling_gt_coverage_min": 0.942, "ns_curling_gt_coverage_max": 0.9588, "ns_curling_best_reward_area_0": 0.9655, "ns_curling_best_reward_area_1": 0.9363, "ns_curling_evaluations": 15900, "ns_curling_wall_s": 1.5423, "ns_curling_compile_s": 4.4424, "ns_curling_train_share": 0.0, "me_curling_areas_found": 2.0, "me_curling_areas_found_min": 2.0, "me_curling_areas_found_max": 2.0, "me_curling_best_reward": 0.9841, "me_curling_best_reward_min": 0.9799, "me_curling_best_reward_max": 0.9883, "me_curling_gt_coverage": 0.901, "me_curling_gt_coverage_min": 0.8908, "me_curling_gt_coverage_max": 0.9112, "me_curling_best_reward_area_0": 0.9731, "me_curling_best_reward_area_1": 0.9841, "me_curling_evaluations": 16000, "me_curling_wall_s": 0.7365, "me_curling_compile_s": 3.622, "me_curling_train_share": 0.0, "nsga2_curling_areas_found": 2.0, "nsga2_curling_areas_found_min": 2.0, "nsga2_curling_areas_found_max": 2.0, "nsga2_curling_best_reward": 0.9861, "nsga2_curling_best_reward_min": 0.9852, "nsga2_curling_best_reward_max": 0.9871, "nsga2_curling_gt_coverage": 0.6538, "nsga2_curling_gt_coverage_min": 0.5856, "nsga2_curling_gt_coverage_max": 0.722, "nsga2_curling_best_reward_area_0": 0.9861, "nsga2_curling_best_reward_area_1": 0.9793, "nsga2_curling_evaluations": 15900, "nsga2_curling_wall_s": 1.6191, "nsga2_curling_compile_s": 4.9186, "nsga2_curling_train_share": 0.0, "cmaes_curling_areas_found": 1.0, "cmaes_curling_areas_found_min": 1.0, "cmaes_curling_areas_found_max": 1.0, "cmaes_curling_best_reward": 0.9902, "cmaes_curling_best_reward_min": 0.9895, "cmaes_curling_best_reward_max": 0.9909, "cmaes_curling_gt_coverage": 0.2366, "cmaes_curling_gt_coverage_min": 0.1172, "cmaes_curling_gt_coverage_max": 0.356, "cmaes_curling_best_reward_area_0": 0.4947, "cmaes_curling_best_reward_area_1": 0.4954, "cmaes_curling_evaluations": 15996, "cmaes_curling_wall_s": 3.7136, "cmaes_curling_compile_s": 7.4401, "cmaes_curling_train_share": 0.0, "serene_curling_areas_found": 2.0, "serene_curling_areas_found_min": 2.0, "serene_curling_areas_found_max": 2.0, "serene_curling_best_reward": 0.9843, "serene_curling_best_reward_min": 0.9787, "serene_curling_best_reward_max": 0.9899, "serene_curling_gt_coverage": 0.8506, "serene_curling_gt_coverage_min": 0.83, "serene_curling_gt_coverage_max": 0.8712, "serene_curling_best_reward_area_0": 0.956, "serene_curling_area_evaluations_0": 7104.0, "serene_curling_best_reward_area_1": 0.95, "serene_curling_area_evaluations_1": 798.0, "serene_curling_evaluations": 16002, "serene_curling_wall_s": 6.9613, "serene_curling_compile_s": 6.4921, "serene_curling_train_share": 0.0, "serene_parallel_curling_areas_found": 2.0, "serene_parallel_curling_areas_found_min": 2.0, "serene_parallel_curling_areas_found_max": 2.0, "serene_parallel_curling_best_reward": 0.9705, "serene_parallel_curling_best_reward_min": 0.9599, "serene_parallel_curling_best_reward_max": 0.9811, "serene_parallel_curling_gt_coverage": 0.848, "serene_parallel_curling_gt_coverage_min": 0.8296, "serene_parallel_curling_gt_coverage_max": 0.8664, "serene_parallel_curling_best_reward_area_0": 0.9696, "serene_parallel_curling_area_evaluations_0": 1485.0, "serene_parallel_curling_best_reward_area_1": 0.9666, "serene_parallel_curling_area_evaluations_1": 6438.0, "serene_parallel_curling_evaluations": 16023, "serene_parallel_curling_wall_s": 6.1189, "serene_parallel_curling_compile_s": 6.1481, "serene_parallel_curling_train_share": 0.0, "stax_curling_areas_found": 2.0, "stax_curling_areas_found_min": 2.0, "stax_curling_areas_found_max": 2.0, "stax_curling_best_reward": 0.9546, "stax_curling_best_reward_min": 0.9527, "stax_curling_best_reward_max": 0.9565, "stax_curling_gt_coverage": 0.3534, "stax_curling_gt_coverage_min": 0.314, "stax_curling_gt_coverage_max": 0.3928, "stax_curling_best_reward_area_0": 0.9345, "stax_curling_area_evaluations_0": 5058.0, "stax_curling_best_reward_area_1": 0.9544, "stax_curling_area_evaluations_1": 2844.0, "stax_curling_evaluations": 16002, "stax_curling_wall_s": 44.0214, "stax_curling_compile_s": 15.239, "stax_curling_train_share": 0.6401, "stax_curling_ae_trainings": 3.0, "stax_p_curling_areas_found": 2.0, "stax_p_curling_areas_found_min": 2.0, "stax_p_curling_areas_found_max": 2.0, "stax_p_curling_best_reward": 0.9793, "stax_p_curling_best_reward_min": 0.9697, "stax_p_curling_best_reward_max": 0.9888, "stax_p_curling_gt_coverage": 0.5356, "stax_p_curling_gt_coverage_min": 0.4932, "stax_p_curling_gt_coverage_max": 0.578, "stax_p_curling_best_reward_area_0": 0.9629, "stax_p_curling_area_evaluations_0": 5592.0, "stax_p_curling_best_reward_area_1": 0.9257, "stax_p_curling_area_evaluations_1": 2310.0, "stax_p_curling_evaluations": 16002, "stax_p_curling_wall_s": 41.0104, "stax_p_curling_compile_s": 18.506, "stax_p_curling_train_share": 0.6137, "stax_p_curling_ae_trainings": 3.0, "stax_nt_curling_areas_found": 2.0, "stax_nt_curling_areas_found_min": 2.0, "stax_nt_curling_areas_found_max": 2.0, "stax_nt_curling_best_reward": 0.9662, "stax_nt_curling_best_reward_min": 0.9645, "stax_nt_curling_best_reward_max": 0.968, "stax_nt_curling_gt_coverage": 0.3778, "stax_nt_curling_gt_coverage_min": 0.3264, "stax_nt_curling_gt_coverage_max": 0.4292, "stax_nt_curling_best_reward_area_0": 0.9453, "stax_nt_curling_area_evaluations_0": 3186.0, "stax_nt_curling_best_reward_area_1": 0.9485, "stax_nt_curling_area_evaluations_1": 4719.0, "stax_nt_curling_evaluations": 16005, "stax_nt_curling_wall_s": 15.8441, "stax_nt_curling_compile_s": 15.7865, "stax_nt_curling_train_share": 0.0, "stax_nt_curling_ae_trainings": 0.0, "random_redundant_arm_areas_found": 1.0, "random_redundant_arm_areas_found_min": 1.0, "random_redundant_arm_areas_found_max": 1.0, "random_redundant_arm_best_reward": 0.9102, "random_redundant_arm_best_reward_min": 0.8725, "random_redundant_arm_best_reward_max": 0.948, "random_redundant_arm_gt_coverage": 0.2732, "random_redundant_arm_gt_coverage_min": 0.272, "random_redundant_arm_gt_coverage_max": 0.2744, "random_redundant_arm_best_reward_area_0": 0.0, "random_redundant_arm_best_reward_area_1": 0.9102, "random_redundant_arm_best_reward_area_2": 0.0, "random_redundant_arm_evaluations": 16000, "random_redundant_arm_wall_s": 0.2805, "random_redundant_arm_compile_s": 6.7444, "random_redundant_arm_train_share": 0.0, "ns_redundant_arm_areas_found": 3.0, "ns_redundant_arm_areas_found_min": 3.0, "ns_redundant_arm_areas_found_max": 3.0, "ns_redundant_arm_best_reward": 0.9253, "ns_redundant_arm_best_reward_min": 0.9201, "ns_redundant_arm_best_reward_max": 0.9305, "ns_redundant_arm_gt_coverage": 0.5758, "ns_redundant_arm_gt_coverage_min": 0.5152, "ns_redundant_arm_gt_coverage_max": 0.6364, "ns_redundant_arm_best_reward_area_0": 0.8822, "ns_redundant_arm_best_reward_area_1": 0.9253, "ns_redundant_arm_best_reward_area_2": 0.6951, "ns_redundant_arm_evaluations": 15900, "ns_redundant_arm_wall_s": 1.0094, "ns_redundant_arm_compile_s": 9.6575, "ns_redundant_arm_train_share": 0.0, "me_redundant_arm_areas_found": 1.0, "me_redundant_arm_areas_found_min": 1.0, "me_redundant_arm_areas_found_max": 1.0, "me_redundant_arm_best_reward": 0.9647, "me_redundant_arm_best_reward_min": 0.9474, "me_redundant_arm_best_reward_max": 0.982, "me_redundant_arm_gt_coverage": 0.3688, "me_redundant_arm_gt_coverage_min": 0.3608, "me_redundant_arm_gt_coverage_max": 0.3768, "me_redundant_arm_best_reward_area_0": 0.0, "me_redundant_arm_best_reward_area_1": 0.9647, "me_redundant_arm_best_reward_area_2": 0.0, "me_redundant_arm_evaluations": 16000, "me_redundant_arm_wall_s": 0.3451, "me_redundant_arm_compile_s": 6.696, "me_redundant_arm_train_share": 0.0, "nsga2_redundant_arm_areas_found": 1.5, "nsga2_redundant_arm_areas_found_min": 1.0, "nsga2_redundant_arm_areas_found_max": 2.0, "nsga2_redundant_arm_best_reward": 0.9977, "nsga2_redundant_arm_best_reward_min": 0.9961, "nsga2_redundant_arm_best_reward_max": 0.9993, "nsga2_redundant_arm_gt_coverage": 0.2692, "nsga2_redundant_arm_gt_coverage_min": 0.196, "nsga2_redundant_arm_gt_coverage_max": 0.3424, "nsga2_redundant_arm_best_reward_area_0": 0.4997, "nsga2_redundant_arm_best_reward_area_1": 0.9949, "nsga2_redundant_arm_best_reward_area_2": 0.0, "nsga2_redundant_arm_evaluations": 15900, "nsga2_redundant_arm_wall_s": 1.1217, "nsga2_redundant_arm_compile_s": 10.0769, "nsga2_redundant_arm_train_share": 0.0, "cmaes_redundant_arm_areas_found": 0.0, "cmaes_redundant_arm_areas_found_min": 0.0, "cmaes_redundant_arm_areas_found_max": 0.0, "cmaes_redundant_arm_best_reward": 0.0, "cmaes_redundant_arm_best_reward_min": 0.0, "cmaes_redundant_arm_best_reward_max": 0.0, "cmaes_redundant_arm_gt_coverage": 0.0592, "cmaes_redundant_arm_gt_coverage_min": 0.0388, "cmaes_redundant_arm_gt_coverage_max": 0.0796, "cmaes_redundant_arm_best_reward_area_0": 0.0, "cmaes_redundant_arm_best_reward_area_1": 0.0, "cmaes_redundant_arm_best_reward_area_2": 0.0, "cmaes_redundant_arm_evaluations": 15996, "cmaes_redundant_arm_wall_s": 4.4391, "cmaes_redundant_arm_compile_s": 9.9086, "cmaes_redundant_arm_train_share": 0.0, "serene_redundant_arm_areas_found": 2.0, "serene_redundant_arm_areas_found_min": 1.0, "serene_redundant_arm_areas_found_max": 3.0, "serene_redundant_arm_best_reward": 0.9827, "serene_redundant_arm_best_reward_min": 0.9794, "serene_redundant_arm_best_reward_max": 0.9859, "serene_redundant_arm_gt_coverage": 0.4572, "serene_redundant_arm_gt_coverage_min": 0.3884, "serene_redundant_arm_gt_coverage_max": 0.526, "serene_redundant_arm_best_reward_area_0": 0.4707, "serene_redundant_arm_area_evaluations_0": 231.0, "serene_redundant_arm_best_reward_area_1": 0.9827, "serene_redundant_arm_area_evaluations_1": 6672.0, "serene_redundant_arm_best_reward_area_2": 0.4536, "serene_redundant_arm_area_evaluations_2": 1005.0, "serene_redundant_arm_evaluations": 16008, "serene_redundant_arm_wall_s": 8.5566, "serene_redundant_arm_compile_s": 13.2945, "serene_redundant_arm_train_share": 0.0, "serene_parallel_redundant_arm_areas_found": 2.0, "serene_parallel_redundant_arm_areas_found_min": 2.0, "serene_parallel_redundant_arm_areas_found_max": 2.0, "serene_parallel_redundant_arm_best_reward": 0.9832, "serene_parallel_redundant_arm_best_reward_min": 0.9773, "serene_parallel_redundant_arm_best_reward_max": 0.9891, "serene_parallel_redundant_arm_gt_coverage": 0.4102, "serene_parallel_redundant_arm_gt_coverage_min": 0.3868, "serene_parallel_redundant_arm_gt_coverage_max": 0.4336, "serene_parallel_redundant_arm_best_reward_area_0": 0.0061, "serene_parallel_redundant_arm_area_evaluations_0": 0.0, "serene_parallel_redundant_arm_best_reward_area_1": 0.9832, "serene_parallel_redundant_arm_area_evaluations_1": 7944.0, "serene_parallel_redundant_arm_best_reward_area_2": 0.1378, "serene_parallel_redundant_arm_area_evaluations_2": 0.0, "serene_parallel_redundant_arm_evaluations": 16044, "serene_parallel_redundant_arm_wall_s": 5.9868, "serene_parallel_redundant_arm_compile_s": 10.7485, "serene_parallel_redundant_arm_train_share": 0.0, "random_hard_maze_areas_found": 0.0, "random_hard_maze_areas_found_min": 0.0, "random_hard_maze_areas_found_max": 0.0, "random_hard_maze_best_reward": 0.0, "random_hard_maze_best_reward_min": 0.0, "random_hard_maze_best_reward_max": 0.0, "random_hard_maze_gt_coverage": 0.1542, "random_hard_maze_gt_coverage_min": 0.152, "random_hard_maze_gt_coverage_max": 0.1564, "random_hard_maze_best_reward_area_0": 0.0, "random_hard_maze_best_reward_area_1": 0.0, "random_hard_maze_evaluations": 4000, "random_hard_maze_wall_s": 1.284, "random_hard_maze_compile_s": 2.2964, "random_hard_maze_train_share": 0.0, "ns_hard_maze_areas_found": 0.5, "ns_hard_maze_areas_found_min": 0.0, "ns_hard_maze_areas_found_max": 1.0, "ns_hard_maze_best_reward": 0.084, "ns_hard_maze_best_reward_min": 0.0, "ns_hard_maze_best_reward_max": 0.168, "ns_hard_maze_gt_coverage": 0.204, "ns_hard_maze_gt_coverage_min": 0.1764, "ns_hard_maze_gt_coverage_max": 0.2316, "ns_hard_maze_best_reward_area_0": 0.0, "ns_hard_maze_best_reward_area_1": 0.084, "ns_hard_maze_evaluations": 3900, "ns_hard_maze_wall_s": 1.3699, "ns_hard_maze_compile_s": 2.6105, "ns_hard_maze_train_share": 0.0, "me_hard_maze_areas_found": 0.0, "me_hard_maze_areas_found_min": 0.0, "me_hard_maze_areas_found_max": 0.0, "me_hard_maze_best_reward": 0.0, "me_hard_maze_best_reward_min": 0.0, "me_hard_maze_best_reward_max": 0.0, "me_hard_maze_gt_coverage": 0.1934, "me_hard_maze_gt_coverage_min": 0.1868, "me_hard_maze_gt_coverage_max": 0.2, "me_hard_maze_best_reward_area_0": 0.0, "me_hard_maze_best_reward_area_1": 0.0, "me_hard_maze_evaluations": 4000, "me_hard_maze_wall_s": 1.2438, "me_hard_maze_compile_s": 1.7639, "me_hard_maze_train_share": 0.0, "nsga2_hard_maze_areas_found": 0.5, "nsga2_hard_maze_areas_found_min": 0.0, "nsga2_hard_maze_areas_found_max": 1.0, "nsga2_hard_maze_best_reward": 0.0995, "nsga2_hard_maze_best_reward_min": 0.0, "nsga2_hard_maze_best_reward_max": 0.199, "nsga2_hard_maze_gt_coverage": 0.2076, "nsga2_hard_maze_gt_coverage_min": 0.1764, "nsga2_hard_maze_gt_coverage_max": 0.2388, "nsga2_hard_maze_best_reward_area_0": 0.0, "nsga2_hard_maze_best_reward_area_1": 0.0995, "nsga2_hard_maze_evaluations": 3900, "nsga2_hard_maze_wall_s": 1.4655, "nsga2_hard_maze_compile_s": 2.8704, "nsga2_hard_maze_train_share": 0.0, "cmaes_hard_maze_areas_found": 0.0, "cmaes_hard_maze_areas_found_min": 0.0, "cmaes_hard_maze_areas_found_max": 0.0, "cmaes_hard_maze_best_reward": 0.0, "cmaes_hard_maze_best_reward_min": 0.0, "cmaes_hard_maze_best_reward_max": 0.0, "cmaes_hard_maze_gt_coverage": 0.0598, "cmaes_hard_maze_gt_coverage_min": 0.042, "cmaes_hard_maze_gt_coverage_max": 0.0776, "cmaes_hard_maze_best_reward_area_0": 0.0, "cmaes_hard_maze_best_reward_area_1": 0.0, "cmaes_hard_maze_evaluations": 3996, "cmaes_hard_maze_wall_s": 5.2778, "cmaes_hard_maze_compile_s": 6.0934, "cmaes_hard_maze_train_share": 0.0, "serene_hard_maze_areas_found": 0.5, "serene_hard_maze_areas_found_min": 0.0, "serene_hard_maze_areas_found_max": 1.0, "serene_hard_maze_best_reward": 0.4663, "serene_hard_maze_best_reward_min": 0.0, "serene_hard_maze_best_reward_max": 0.9325, "serene_hard_maze_gt_coverage": 0.2066, "serene_hard_maze_gt_coverage_min": 0.1824, "serene_hard_maze_gt_coverage_max": 0.2308, "serene_hard_maze_best_reward_area_0": 0.0, "serene_hard_maze_area_evaluations_0": 0.0, "serene_hard_maze_best_reward_area_1": 0.4663, "serene_hard_maze_area_evaluations_1": 501.0, "serene_hard_maze_evaluations": 4101, "serene_hard_maze_wall_s": 3.2315, "serene_hard_maze_compile_s": 6.4451, "serene_hard_maze_train_share": 0.0, "serene_parallel_hard_maze_areas_found": 0.5, "serene_parallel_hard_maze_areas_found_min": 0.0, "serene_parallel_hard_maze_areas_found_max": 1.0, "serene_parallel_hard_maze_best_reward": 0.4663, "serene_parallel_hard_maze_best_reward_min": 0.0, "serene_parallel_hard_maze_best_reward_max": 0.9325, "serene_parallel_hard_maze_gt_coverage": 0.2078, "serene_parallel_hard_maze_gt_coverage_min": 0.1824, "serene_parallel_hard_maze_gt_coverage_max": 0.2332, "serene_parallel_hard_maze_best_reward_area_0": 0.0, "serene_parallel_hard_maze_area_evaluations_0": 0.0, "serene_parallel_hard_maze_best_reward_area_1": 0.4663, "serene_parallel_hard_maze_area_evaluations_1": 504.0, "serene_parallel_hard_maze_evaluations": 4104, "serene_parallel_hard_maze_wall_s": 2.8763, "serene_parallel_hard_maze_compile_s": 6.9314, "serene_parallel_hard_maze_train_share": 0.0, "budget": 16000, "hard_maze_budget": 4000, "hard_maze_steps": 1000, "seeds": 2, "quick": true, "parallel_slots": 8, "plots": "/tmp/srq3", "total_s": 505.2, "load": [1.66, 1.79, 2.53]}

What is run (``ALGORITHMS`` is a table, one row per algorithm):

==============  =================================================================================================
``random``      :class:`qd.algorithms.RandomSearch`: 200 fresh ``task.initial_genotypes`` (N(0, 1) clipped to
                [-5, 5]) per generation, offered to a 50x50 grid over ``task.descriptor_bounds``.
``ns``          :class:`qd.algorithms.NoveltySearch` with SERENE's settings: 100 parents x 2 offspring, sigma
                0.05, genomes clipped to (-5, 5), k = 15, novelty archive an :class:`qd.UnstructuredArchive` of
                16384 slots, policy ``"random"``, 5 per generation (``qd/exploration_jobs.py``).
``me``          :class:`qd.algorithms.MAPElites` on the ground truth: 50x50 :class:`qd.GridArchive` over the task's
                descriptor bounds, a ``GaussianEmitter(batch_size=200, sigma=0.05, clip=(-5, 5))`` (the SERENE
                code's ME baseline uses 100 offspring per generation; 200 here, the batch of the others),
                ``ground_truth=GroundTruth.of_task(task)``.
``nsga2``       ``NoveltySearch(..., survival="nsga2")``: as ``ns``, survivors by NSGA-II on (novelty, reward).
``cmaes``       a plain CMA-ES (:class:`emitters.cmaes.CMAES`, active weights, population 6, sigma0 0.05, clipped to
                [-5, 5], as the SERENE code's CMA-ES baseline) maximising the reward from a random genome,
                restarted when any of its stop criteria fires (on a flat zero reward: ``equal_fun`` after
                ``10 + ceil(30 D / 6)`` iterations), from the best agent found so far once one has a reward (as the
                baseline restarts from the best agent of its archive), from a fresh random genome before that;
                every evaluation is offered to a 50x50 grid (the archive of record). Written here as a small
                algorithm object of the protocol of :mod:`qd.algorithms.driver` (``RestartingCMAES``) and run on
                ``Driver(algorithm, task.evaluate, ground_truth=GroundTruth.of_task(task))``.
``serene``      :class:`qd.algorithms.serene.Serene`, ``mode="faithful"``, ``emitters.local.FitnessEmitter`` (FIT,
                6 parents, 12 evaluations a step), chunks of 1000 evaluations, alternating scheduler, 32 slots.
``serene_parallel``
                the same in ``mode="parallel"`` (**our variant**, not the paper's: every active emitter steps in the
                same iteration; ``--parallel-slots`` slots, 8 by default, so an exploitation iteration evaluates
                8 x 12 rows, the unused ones as uncounted padding).
``stax``        :class:`qd.algorithms.stax.Stax` (``selection="mixed"``: novelty or surprise at random each
                generation), the STAX code's conv AE (latent 10) on 64x64 images of the final state rendered in JAX,
                trained after exploration chunks 1, 3, 6, ... (``--ae-max-epochs``, 100; quick 10; early
                stopping on a 20% validation split); archives store the final state and ground truth. Faithful
                mode, FIT, as ``serene``. ``--stax-tasks`` (quick: curling only).
``stax_p``      the same with ``selection="nsga2"`` (NSGA-II on novelty and surprise; the STAX paper's "STAX").
``stax_nt``     the same with an untrained encoder, novelty only: the reference of ``train_share`` (the share of
                the wall time in AE training, ``1 - wall(stax_nt) / wall(stax)``: everything else, rendering and
                encoding included, costs the same).
==============  =================================================================================================

Budget: every algorithm gets ``--budget`` evaluations. Generation-based algorithms run ``iterations = budget //
batch`` (random, ME: 200 a generation, the initial batch being generation 0; NS, NSGA-II: an initial population of
100, then ``(budget - 100) // 200`` generations; CMA-ES: ``budget // 6`` generations of 6); SERENE counts
evaluations itself and the benchmark loops ``scan(state, chunk)`` until ``metrics["phase"] == 2`` (the run ends
within one iteration of the budget). ``num_evaluations`` reports what each one spent.

Seeds: run **one after the other** (not vmapped) with the algorithm built once per task, so every seed runs the
same compiled programs (same shapes, fixed scan lengths: whole chunks of ``--chunk`` iterations, then one
remainder chunk, the same for every seed). The first seed's time includes compilation; ``wall_s`` is the mean
over seeds 2..S of the whole run (init, initial evaluation and all scans, synchronised), ``compile_s`` the first
seed's time minus it. With ``--seeds 1`` ``wall_s`` includes compilation (and ``compile_s`` is null).

Metrics per (algorithm, task), mean over seeds with [min, max] (the driver's exploration metrics over every agent
evaluated, :func:`qd.metrics.exploration_metrics`):

- ``areas_found``: ``reward_areas_found`` at the end; ``best_reward``: the best ``best_reward_area_<i>`` over the
  areas (per area too, ``best_reward_area_<i>``; rewards are ``(r - d) / r`` in ``[0, 1]``);
- ``gt_coverage``: cells of the 50x50 ground-truth grid reached. For SERENE only exploration agents count (the
  papers' CVG); for NS / NSGA-II every agent is an exploration agent; for random, ME and CMA-ES every evaluation;
- ``area_evaluations_<i>``: SERENE's emitter evaluations per reward area (none for the others);
- ``wall_s``, ``compile_s`` (above), and ``train_share``: the share of wall time spent training an AE (0 without
  one; for STAX and STAX-P estimated against STAX-NT, above; None without a ``stax_nt`` row).

Plots (``--out``, default a fresh temporary folder; nothing is written into the repository): one PNG per task,
``<task>.png``, with the summed best reward over areas and the ground-truth coverage against evaluations, a line
per algorithm (mean over seeds, on a common grid of evaluations).

``--serene-full``: one SERENE faithful run of 500,000 evaluations on curling (``--serene-full-budget``), its wall
time in minutes including compilation (the original implementation: about 4 h on one core, 28.5 ms per curling
evaluation, ``sparse_reward_qd.md`` section 5).

Last line: one JSON object with ``<algorithm>_<task>_areas_found``, ``<algorithm>_<task>_best_reward`` and
``<algorithm>_<task>_wall_s`` for every pair run (and ``_min`` / ``_max``, ``_gt_coverage``, ``_compile_s``,
``_evaluations``, ``_train_share``, ``_ae_trainings`` (STAX), ``_best_reward_area_<i>``, ``_area_evaluations_<i>``), the settings,
``total_s`` and the load averages.

    python benchmarks/sparse_reward.py --quick
    python benchmarks/sparse_reward.py [--budget 200000] [--seeds 3] [--tasks curling ...] [--algorithms ns serene ...]
    python benchmarks/sparse_reward.py --serene-full
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import struct  # noqa: E402

from emitters.cmaes import CMAES, CMAESState  # noqa: E402
from qd.archives import GridArchive, UnstructuredArchive  # noqa: E402
from qd.archives.base import Archive  # noqa: E402
from qd.metrics import GroundTruth  # noqa: E402
from qd.tasks.base import Evaluation  # noqa: E402
from qd.tasks.registry import get_task_spec  # noqa: E402

TASKS = ("curling", "redundant_arm", "hard_maze")
EXTRA_TASKS = ("point2d",)  # cheap, for the smoke test; not in the default list
BATCH = 200  # evaluations per generation (NS: 100 parents x 2)
POPULATION = 100
SIGMA = 0.05
CLIP = (-5.0, 5.0)
RESOLUTION = 50
NS_ARCHIVE_CAPACITY = 16384
NS_ARCHIVE_PER_GENERATION = 5
CMA_POPULATION = 6
CURVE_POINTS = 200


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# ------------------------------------------------------------------------------------------------- #
# CMA-ES with restarts, on the driver protocol
# ------------------------------------------------------------------------------------------------- #
@struct.dataclass
class RestartingCMAESState:
    """``cma``: the CMA-ES instance; ``archive``: every evaluation offered to it (the archive of record);
    ``best_genotype (D,)`` / ``best_reward ()``: the best agent so far (restart point once rewarding)."""

    cma: CMAESState
    archive: Archive
    best_genotype: jax.Array
    best_reward: jax.Array


class RestartingCMAES:
    """One CMA-ES maximising the reward, restarted on its stop criteria (see the module docstring).

    ``init(key, archive) -> (state, genotypes (P, D))``, ``ask`` -> ``(P, D)`` samples, ``tell`` ranks them by
    reward, updates, and restarts where ``should_stop``; ``archive(state)``; ``metrics(state)``: ``cmaes_restarts``,
    ``cmaes_sigma``. ``P = population``, ``D = dim``.
    """

    def __init__(self, dim: int, sample: Callable[[jax.Array, int], jax.Array], population: int = CMA_POPULATION,
                 sigma0: float = SIGMA, clip=CLIP):
        self.cma = CMAES(dim, population, sigma0, lower=clip[0], upper=clip[1])
        self.sample = sample

    def init(self, key, archive):
        k_mean, k_ask = jax.random.split(key)
        mean = self.sample(k_mean, 1)[0]
        cma = self.cma.init(key, mean)
        genotypes, _ = self.cma.ask(cma, k_ask)
        return RestartingCMAESState(cma, archive, mean, jnp.asarray(-jnp.inf, jnp.float32)), genotypes

    def ask(self, state, key):
        genotypes, _ = self.cma.ask(state.cma, key)
        return genotypes, state

    def tell(self, state, genotypes, evaluation: Evaluation, key):
        archive, _ = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses)
        rewards = jnp.where(jnp.isfinite(evaluation.fitnesses), evaluation.fitnesses, -jnp.inf)
        values = -rewards  # CMA-ES minimises
        cma = self.cma.tell(state.cma, genotypes, self.cma.ranking(state.cma, values), values)
        i = jnp.argmax(rewards)
        better = rewards[i] > state.best_reward
        best_genotype = jnp.where(better, genotypes[i], state.best_genotype)
        best_reward = jnp.where(better, rewards[i], state.best_reward)
        k_mean, k_restart = jax.random.split(key)
        mean = jnp.where(best_reward > 0, best_genotype, self.sample(k_mean, 1)[0])
        cma = self.cma.restart_where(cma, k_restart, mean, self.cma.should_stop(cma))
        return RestartingCMAESState(cma, archive, best_genotype, best_reward)

    def archive(self, state):
        return state.archive

    def metrics(self, state):
        return {"cmaes_restarts": state.cma.restarts, "cmaes_sigma": state.cma.sigma}


# ------------------------------------------------------------------------------------------------- #
# The algorithm table
# ------------------------------------------------------------------------------------------------- #
@dataclass
class Runnable:
    """One algorithm built for one task: ``init(seed) -> (state, m0)``; ``iterations``: the scan length of a
    generation-based run (None: budget-driven, scan until ``metrics["phase"] == 2``)."""

    driver: Any
    init: Callable[[int], Any]
    iterations: Optional[int]


def _grid(task, template):
    lower, upper = task.descriptor_bounds
    return GridArchive.create(template, RESOLUTION, lower, upper, qd_offset=float(getattr(task, "qd_offset", 0.0)))


def _ns_archive(task, template, seed):
    lower, upper = task.descriptor_bounds
    return UnstructuredArchive.create(template, NS_ARCHIVE_CAPACITY, 2, lower=lower, upper=upper, policy="random",
                                      num_per_batch=NS_ARCHIVE_PER_GENERATION,
                                      qd_offset=float(getattr(task, "qd_offset", 0.0)), seed=seed)


def _keys(seed):
    return jax.random.split(jax.random.key(int(seed)))


def build_random(task, budget, args):
    from qd.algorithms import RandomSearch

    template = jnp.zeros(task.num_params)
    driver = RandomSearch(task.evaluate, task.initial_genotypes, BATCH, task.descriptor_bounds, task.num_reward_areas,
                          RESOLUTION, compiler_options=getattr(task, "compiler_options", None))
    return Runnable(driver, lambda seed: driver.init(_grid(task, template), _keys(seed)[1]), budget // BATCH)


def _build_ns(task, budget, survival):
    from qd.algorithms import NoveltySearch

    template = jnp.zeros(task.num_params)
    driver = NoveltySearch(task.evaluate, task.descriptor_bounds, task.num_reward_areas, offspring_per_parent=2,
                           sigma=SIGMA, genotype_bounds=CLIP, survival=survival, coverage_resolution=RESOLUTION,
                           compiler_options=getattr(task, "compiler_options", None))

    def init(seed):
        k_genotypes, k_run = _keys(seed)
        return driver.init(_ns_archive(task, template, seed), task.initial_genotypes(k_genotypes, POPULATION), k_run)

    return Runnable(driver, init, (budget - POPULATION) // BATCH)


def build_ns(task, budget, args):
    return _build_ns(task, budget, "novelty")


def build_nsga2(task, budget, args):
    return _build_ns(task, budget, "nsga2")


def build_me(task, budget, args):
    from emitters import GaussianEmitter
    from qd.algorithms import MAPElites

    template = jnp.zeros(task.num_params)
    driver = MAPElites(GaussianEmitter(batch_size=BATCH, sigma=SIGMA, clip=CLIP), task.evaluate,
                       ground_truth=GroundTruth.of_task(task), compiler_options=getattr(task, "compiler_options", None))

    def init(seed):
        k_genotypes, k_run = _keys(seed)
        return driver.init(_grid(task, template), task.initial_genotypes(k_genotypes, BATCH), k_run)

    return Runnable(driver, init, budget // BATCH)


def build_cmaes(task, budget, args):
    from qd.algorithms import Driver

    template = jnp.zeros(task.num_params)
    algorithm = RestartingCMAES(task.num_params, task.initial_genotypes)
    driver = Driver(algorithm, task.evaluate, ground_truth=GroundTruth.of_task(task),
                    compiler_options=getattr(task, "compiler_options", None))
    return Runnable(driver, lambda seed: driver.init(_grid(task, template), _keys(seed)[1]), budget // CMA_POPULATION)


def _build_serene(task, budget, mode, slots):
    from emitters.local import FitnessEmitter
    from qd.algorithms.serene import Serene

    template = jnp.zeros(task.num_params)
    lower, upper = task.descriptor_bounds
    driver = Serene(task.evaluate, task.descriptor_bounds, task.num_reward_areas, FitnessEmitter(clip=CLIP), budget,
                    mode=mode, emitter_slots=slots, chunk_evaluations=1000, offspring_per_parent=2, sigma=SIGMA,
                    genotype_bounds=CLIP, compiler_options=getattr(task, "compiler_options", None))

    def init(seed):
        k_genotypes, k_run = _keys(seed)
        rewards = UnstructuredArchive.create(template, NS_ARCHIVE_CAPACITY, 2, lower=lower, upper=upper,
                                             policy="threshold", threshold=0.0)
        return driver.init(_ns_archive(task, template, seed), task.initial_genotypes(k_genotypes, POPULATION),
                           rewards, k_run)

    return Runnable(driver, init, None)


def build_serene(task, budget, args):
    return _build_serene(task, budget, "faithful", 32)


def build_serene_parallel(task, budget, args):
    return _build_serene(task, budget, "parallel", args.parallel_slots)


def _build_stax(task, budget, args, variant):
    from emitters.local import FitnessEmitter
    from qd.algorithms.stax import VARIANTS, Stax
    from qd.learned import Autoencoder, stax_autoencoder
    from qd.tasks.base import extras_template

    selection, train = VARIANTS[variant]
    autoencoder = Autoencoder(stax_autoencoder(latent_dim=10), render=task.render)  # the STAX code's conv AE
    driver = Stax(task.evaluate, task.descriptor_bounds, task.num_reward_areas, FitnessEmitter(clip=CLIP), budget,
                  autoencoder, selection=selection, train=train, max_epochs=args.ae_max_epochs, chunk_evaluations=1000,
                  offspring_per_parent=2, sigma=SIGMA, genotype_bounds=CLIP,
                  compiler_options=getattr(task, "compiler_options", None))
    stored = extras_template(task, keys=("final_state", "gt_descriptor", "reward_area"))
    latent = driver.algorithm.descriptor_dim(stored["final_state"])
    template = jnp.zeros(task.num_params)

    def init(seed):
        k_genotypes, k_run = _keys(seed)
        archive = UnstructuredArchive.create(template, NS_ARCHIVE_CAPACITY, latent, policy="random",
                                             num_per_batch=NS_ARCHIVE_PER_GENERATION, extras_template=stored, seed=seed)
        rewards = UnstructuredArchive.create(template, NS_ARCHIVE_CAPACITY, latent, policy="threshold", threshold=0.0,
                                             extras_template=stored)
        return driver.init(archive, task.initial_genotypes(k_genotypes, POPULATION), rewards, k_run)

    return Runnable(driver, init, None)


def build_stax(task, budget, args):
    return _build_stax(task, budget, args, "stax")


def build_stax_p(task, budget, args):
    return _build_stax(task, budget, args, "stax_p")


def build_stax_nt(task, budget, args):
    return _build_stax(task, budget, args, "stax_nt")


# name -> (label, builder(task, budget, args) -> Runnable).
ALGORITHMS: Dict[str, tuple] = {
    "random": ("random search", build_random),
    "ns": ("novelty search", build_ns),
    "me": ("MAP-Elites (ground truth)", build_me),
    "nsga2": ("NSGA-II (novelty, reward)", build_nsga2),
    "cmaes": ("CMA-ES (restarts)", build_cmaes),
    "serene": ("SERENE (faithful)", build_serene),
    "serene_parallel": ("SERENE parallel (our variant)", build_serene_parallel),
    "stax": ("STAX (learned space, novelty or surprise)", build_stax),
    "stax_p": ("STAX-P (learned space, NSGA-II on novelty and surprise)", build_stax_p),
    "stax_nt": ("STAX-NT (untrained encoder; the AE-training share's reference)", build_stax_nt),
}
LEARNED = ("stax", "stax_p", "stax_nt")
BUDGET_DRIVEN = ("serene", "serene_parallel") + LEARNED


# ------------------------------------------------------------------------------------------------- #
# Running
# ------------------------------------------------------------------------------------------------- #
KEEP = ("num_evaluations", "gt_coverage", "reward_areas_found", "phase", "ae_trainings")


def _keep(metrics: Dict[str, Any], areas: int) -> Dict[str, np.ndarray]:
    names = list(KEEP) + [f"best_reward_area_{i}" for i in range(areas)] + [f"area_evaluations_{i}" for i in range(areas)]
    return {k: np.atleast_1d(np.asarray(metrics[k])) for k in names if k in metrics}


def run_seed(runnable: Runnable, seed: int, budget: int, chunk: int, areas: int, max_chunks: int = 100_000):
    """One run; returns ``(curves {name: (T,)}, seconds)`` with the initial metrics first when it was evaluated."""
    t0 = time.perf_counter()
    state, m0 = runnable.init(seed)
    parts = []
    if int(np.asarray(m0["iteration"])) >= 0:
        parts.append(_keep(m0, areas))
    driver = runnable.driver
    if runnable.iterations is not None:
        lengths = [chunk] * (runnable.iterations // chunk) + ([runnable.iterations % chunk] if runnable.iterations % chunk else [])
        for n in lengths:
            state, m = driver.scan(state, n)
            parts.append(_keep(m, areas))
    else:
        for _ in range(max_chunks):
            state, m = driver.scan(state, chunk)
            parts.append(_keep(m, areas))
            if int(parts[-1]["phase"][-1]) == 2:
                break
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
    curves = {k: np.concatenate([p[k] for p in parts if k in p]) for k in parts[-1]}
    return curves, seconds


def summarise(curves_by_seed: List[Dict[str, np.ndarray]], times: List[float], areas: int) -> Dict[str, Any]:
    def stat(values):
        values = [float(v) for v in values]
        return float(np.mean(values)), float(np.min(values)), float(np.max(values))

    final = lambda name: [c[name][-1] for c in curves_by_seed]
    out: Dict[str, Any] = {}
    out["areas_found"], out["areas_found_min"], out["areas_found_max"] = stat(final("reward_areas_found"))
    best = [max(float(c[f"best_reward_area_{i}"][-1]) for i in range(areas)) for c in curves_by_seed]
    out["best_reward"], out["best_reward_min"], out["best_reward_max"] = stat(best)
    out["gt_coverage"], out["gt_coverage_min"], out["gt_coverage_max"] = stat(final("gt_coverage"))
    for i in range(areas):
        out[f"best_reward_area_{i}"] = stat(final(f"best_reward_area_{i}"))[0]
        if f"area_evaluations_{i}" in curves_by_seed[0]:
            out[f"area_evaluations_{i}"] = stat(final(f"area_evaluations_{i}"))[0]
    out["evaluations"] = int(np.mean(final("num_evaluations")))
    if len(times) > 1:
        out["wall_s"] = float(np.mean(times[1:]))
        out["compile_s"] = max(times[0] - out["wall_s"], 0.0)
    else:
        out["wall_s"], out["compile_s"] = times[0], None
    out["first_seed_s"] = times[0]
    out["train_share"] = 0.0  # no AE training (STAX rows: set by _training_shares)
    return out


def _training_shares(per_task: Dict[str, Dict[str, Any]]) -> None:
    """STAX's share of wall time in AE training: ``1 - wall(stax_nt) / wall(variant)``, the untrained encoder
    costing everything else the same (rendering, encoding, both phases; its trajectory differs, so this is an
    estimate). None without a ``stax_nt`` row."""
    reference = per_task.get("stax_nt")
    for name in ("stax", "stax_p"):
        if name in per_task:
            wall = per_task[name]["wall_s"]
            per_task[name]["train_share"] = (None if reference is None or not wall
                                             else max(0.0, 1.0 - reference["wall_s"] / wall))


def mean_curve(curves_by_seed, name, grid):
    """Mean over seeds of a running metric, interpolated (step-wise: last value reached) on ``grid``."""
    rows = []
    for c in curves_by_seed:
        x, y = c["num_evaluations"].astype(np.float64), c[name].astype(np.float64)
        idx = np.searchsorted(x, grid, side="right") - 1
        rows.append(np.where(idx >= 0, y[np.clip(idx, 0, len(y) - 1)], 0.0))
    return np.mean(rows, axis=0)


def plot_task(task_name: str, results: Dict[str, Any], areas: int, budget: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, CURVE_POINTS)
    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in results.items():
        curves = r["curves"]
        reward = sum(mean_curve(curves, f"best_reward_area_{i}", grid) for i in range(areas))
        ax_r.plot(grid, reward, label=ALGORITHMS[name][0])
        ax_c.plot(grid, mean_curve(curves, "gt_coverage", grid), label=ALGORITHMS[name][0])
    ax_r.set_ylabel(f"sum over the {areas} areas of the best reward")
    ax_c.set_ylabel(f"ground-truth coverage ({RESOLUTION}x{RESOLUTION})")
    for ax in (ax_r, ax_c):
        ax.set_xlabel("evaluations")
        ax.grid(alpha=0.3)
    ax_c.legend(fontsize=8)
    fig.suptitle(f"{task_name}: mean over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def make_task(name: str, args):
    options = {}
    if name == "hard_maze" and args.hard_maze_steps:
        options["num_steps"] = args.hard_maze_steps
    return get_task_spec(name).make(**options)


def serene_full(args) -> Dict[str, Any]:
    task = make_task("curling", args)
    budget = args.serene_full_budget
    print(f"SERENE faithful, curling, {budget} evaluations ...", flush=True)
    runnable = build_serene(task, budget, args)
    curves, seconds = run_seed(runnable, 0, budget, args.serene_chunk, task.num_reward_areas)
    s = summarise([curves], [seconds], task.num_reward_areas)
    out = {"serene_full_curling_budget": budget, "serene_full_curling_evaluations": s["evaluations"],
           "serene_full_curling_wall_min": round(seconds / 60, 2), "serene_full_curling_areas_found": s["areas_found"],
           "serene_full_curling_best_reward": round(s["best_reward"], 4),
           "serene_full_curling_gt_coverage": round(s["gt_coverage"], 4)}
    for i in range(task.num_reward_areas):
        out[f"serene_full_curling_area_evaluations_{i}"] = s.get(f"area_evaluations_{i}")
    print(f"  {seconds / 60:.1f} min (compilation included), {s['evaluations']} evaluations, areas {s['areas_found']:.0f}, "
          f"best reward {s['best_reward']:.3f}, coverage {s['gt_coverage']:.3f}", flush=True)
    return out


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="16k evaluations (hard_maze: --hard-maze-budget), 2 seeds, hard maze of 1000 steps")
    parser.add_argument("--budget", type=int, default=None, help="evaluations per run (default 200000; quick 16000)")
    parser.add_argument("--hard-maze-budget", type=int, default=None,
                        help="evaluations per hard_maze run (default --budget; quick 4000)")
    parser.add_argument("--hard-maze-steps", type=int, default=None, help="hard_maze episode (default 2000; quick 1000)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per (algorithm, task) (default 3; quick 2)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS + EXTRA_TASKS)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    parser.add_argument("--chunk", type=int, default=25, help="generations per compiled scan (generation-based)")
    parser.add_argument("--cma-chunk", type=int, default=250, help="CMA-ES generations (of 6) per compiled scan")
    parser.add_argument("--serene-chunk", type=int, default=250, help="SERENE iterations per compiled scan")
    parser.add_argument("--parallel-slots", type=int, default=8, help="serene_parallel: emitter slots")
    parser.add_argument("--stax-tasks", nargs="+", default=None, choices=TASKS + EXTRA_TASKS,
                        help="tasks of the STAX rows (default: every task; quick: curling)")
    parser.add_argument("--ae-max-epochs", type=int, default=None, help="STAX: epochs per training (default 100; quick 10)")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default: a new temporary folder)")
    parser.add_argument("--serene-full", action="store_true",
                        help="only one SERENE faithful run of --serene-full-budget evaluations on curling")
    parser.add_argument("--serene-full-budget", type=int, default=500_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.budget = args.budget or 16_000
        args.seeds = args.seeds or 2
        args.hard_maze_steps = args.hard_maze_steps or 1000
        args.hard_maze_budget = args.hard_maze_budget or 4_000
        args.stax_tasks = args.stax_tasks or ["curling"]
        args.ae_max_epochs = args.ae_max_epochs or 10
    args.ae_max_epochs = args.ae_max_epochs or 100
    args.stax_tasks = args.stax_tasks or list(args.tasks)
    args.budget = args.budget or 200_000
    args.seeds = args.seeds or 3
    args.hard_maze_budget = args.hard_maze_budget or args.budget
    t_all = time.perf_counter()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, load {_load()}", flush=True)

    if args.serene_full:
        result = serene_full(args)
        result.update(total_s=round(time.perf_counter() - t_all, 1), load=_load())
        print(json.dumps(result))
        return result

    out_dir = args.out or tempfile.mkdtemp(prefix="sparse_reward_")
    os.makedirs(out_dir, exist_ok=True)
    result: Dict[str, Any] = {}
    table: Dict[tuple, Dict[str, Any]] = {}
    for task_name in args.tasks:
        task = make_task(task_name, args)
        areas = int(task.num_reward_areas)
        budget = args.hard_maze_budget if task_name == "hard_maze" else args.budget
        per_task: Dict[str, Any] = {}
        for name in args.algorithms:
            if name in LEARNED and task_name not in args.stax_tasks:
                continue
            label, build = ALGORITHMS[name]
            runnable = build(task, budget, args)
            chunk = args.cma_chunk if name == "cmaes" else args.serene_chunk if name in BUDGET_DRIVEN else args.chunk
            curves, times = [], []
            for seed in range(args.seeds):
                c, s = run_seed(runnable, seed, budget, chunk, areas)
                curves.append(c)
                times.append(s)
                print(f"  {name:9s} {task_name:13s} seed {seed}: {s:7.1f} s, {int(c['num_evaluations'][-1])} evaluations, "
                      f"areas {int(c['reward_areas_found'][-1])}, coverage {float(c['gt_coverage'][-1]):.3f}", flush=True)
            summary = summarise(curves, times, areas)
            summary["curves"] = curves
            per_task[name] = summary
            if "ae_trainings" in curves[0]:
                summary["ae_trainings"] = float(np.mean([c["ae_trainings"][-1] for c in curves]))
            table[(name, task_name)] = summary
            for k, v in summary.items():
                if k != "curves" and k != "first_seed_s":
                    result[f"{name}_{task_name}_{k}"] = _round(v)
        _training_shares(per_task)
        for name in LEARNED:
            if name in per_task:
                result[f"{name}_{task_name}_train_share"] = _round(per_task[name]["train_share"])
        if per_task:
            path = os.path.join(out_dir, f"{task_name}.png")
            plot_task(task_name, per_task, areas, budget, path)
            print(f"  plot: {path}", flush=True)

    print()
    print(f"{'algorithm':9s} {'task':13s} {'areas':>5s} {'[min,max]':>9s} {'best rew':>8s} {'[min, max]':>13s} "
          f"{'per area':>20s} {'gt cov':>6s} {'evals/area (SERENE)':>21s} {'evals':>7s} {'wall s':>7s} {'comp s':>6s} {'AE %':>4s}")
    for (name, task_name), r in table.items():
        areas = sum(1 for k in r if k.startswith("best_reward_area_"))
        per_area = " ".join(f"{r[f'best_reward_area_{i}']:.2f}" for i in range(areas))
        evals = " ".join(f"{r[f'area_evaluations_{i}']:.0f}" for i in range(areas)) if "area_evaluations_0" in r else "-"
        comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        print(f"{name:9s} {task_name:13s} {r['areas_found']:5.1f} [{r['areas_found_min']:.0f},{r['areas_found_max']:.0f}]"
              f"{'':>4s} {r['best_reward']:8.3f} [{r['best_reward_min']:.2f}, {r['best_reward_max']:.2f}] {per_area:>20s} "
              f"{r['gt_coverage']:6.3f} {evals:>21s} {r['evaluations']:7d} {r['wall_s']:7.1f} {comp:>6s} "
              f"{'-' if r['train_share'] is None else format(100 * r['train_share'], '4.0f'):>4s}")
    result.update(budget=args.budget, hard_maze_budget=args.hard_maze_budget, hard_maze_steps=args.hard_maze_steps or 2000,
                  seeds=args.seeds, quick=bool(args.quick), parallel_slots=args.parallel_slots, plots=out_dir,
                  total_s=round(time.perf_counter() - t_all, 1), load=_load())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
