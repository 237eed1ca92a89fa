# tests.cmake - every test of the project, run by ctest (launch/test.sh).
#
# Unit tests: tests/test_<module>.c, cmocka, one executable each, linked against the lowest
# layer that holds its module (so a unit of a leaf layer also proves, at link time, that the
# layer needs nothing above it).
# Integration tests: shell scripts in tests/ that drive the real binaries (trainer, aggregate,
# mpirun); they get the build directory as $1 and the source directory as $2.

# px_unit_test(NAME LIBRARY): tests/NAME.c linked with LIBRARY
function(px_unit_test name lib)
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/${name}.c)
  target_link_libraries(${name} PRIVATE ${lib} PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS unit
    ENVIRONMENT "PX_SOURCE_DIR=${CMAKE_SOURCE_DIR};PX_BUILD_DIR=${CMAKE_BINARY_DIR}")
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT ${PX_SANITIZER_ENV})
endfunction()

px_unit_test(test_device px_base)
foreach(t test_agg_basic test_agg_classic test_agg_edge test_agg_fedld test_agg_flag
          test_agg_gram test_agg_shard test_agg_state test_coord_math)
  px_unit_test(${t} px_aggregators)
endforeach()
target_include_directories(test_agg_gram PRIVATE ${PX_GEN})
foreach(t test_codec test_codec_formats test_codec_hostile test_codec_rht test_codec_state
          test_wire test_shm)
  px_unit_test(${t} px_comm)
endforeach()
px_unit_test(test_byzantine "px_faults;px_comm;px_nn")
px_unit_test(test_adaptive px_faults)
px_unit_test(test_partition px_fl)
px_unit_test(test_clients px_fl)
px_unit_test(test_layers px_nn)
px_unit_test(test_layers_gpt px_nn)
px_unit_test(test_mlp px_nn)
px_unit_test(test_model px_nn)
px_unit_test(test_exec_models px_nn)
px_unit_test(test_optimizer px_nn)
foreach(t test_config test_config_agg test_dataset test_lisa test_npy test_server test_state)
  px_unit_test(${t} px_runtime)
endforeach()

# px_integration_test(NAME TIMEOUT_S): tests/NAME.sh BUILD_DIR SOURCE_DIR
function(px_integration_test name timeout)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/${name}.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${timeout} LABELS integration
    ENVIRONMENT "${PX_SANITIZER_ENV}")
endfunction()

# the split transport (headers over MPI, payloads over NCCL or its MPI channel) under mpirun:
# tests/it_split.sh runs it on the MPI channel (ctest it_split_check), tests/gpu/run.sh on NCCL
add_executable(split_check ${CMAKE_SOURCE_DIR}/tests/split_check.c)
target_link_libraries(split_check PRIVATE px_comm MPI::MPI_C)
set_target_properties(split_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME it_split_check COMMAND bash ${CMAKE_SOURCE_DIR}/tests/it_split.sh ${CMAKE_BINARY_DIR}
  ${CMAKE_SOURCE_DIR})
set_tests_properties(it_split_check PROPERTIES TIMEOUT 300 LABELS integration
  ENVIRONMENT "${PX_SANITIZER_ENV};PX_SPLIT_PART=check")

# a rank that attacks the server's transport from outside (tests/it_hostile_rank.sh runs it
# beside the trainer under mpirun)
add_executable(hostile_rank ${CMAKE_SOURCE_DIR}/tests/hostile_rank.c)
target_link_libraries(hostile_rank PRIVATE px_comm MPI::MPI_C)
set_target_properties(hostile_rank PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# one step of an attack on rows from a .npy (tests/it_adaptive.sh checks it against NumPy)
add_executable(attack_probe ${CMAKE_SOURCE_DIR}/tests/attack_probe.c)
target_link_libraries(attack_probe PRIVATE px_runtime)
set_target_properties(attack_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

foreach(t it_layers it_checkpoint it_data it_adaptive it_aggregate it_attacks it_cli it_codec_cuda
          it_cuda_config it_codec_train it_determinism it_device_path it_faults it_federated it_hostile_rank
          it_lisa it_models it_outputs it_quickstart it_resync it_shm it_slurm it_split it_stall
          it_state it_straggler it_train_mpi)
  px_integration_test(${t} 600)
endforeach()
# it_slurm needs root and Slurm's packages; without them it reports a skip, not a pass
set_tests_properties(it_slurm PROPERTIES SKIP_RETURN_CODE 77)
# it_split (the trainer over transport NCCL, on its CPU channel) needs a build with NCCL, which
# the config rules require; without, a skip (it_split_check runs the protocol in every build)
set_tests_properties(it_split PROPERTIES SKIP_RETURN_CODE 77)

# across simulated hosts (tests/cluster/cluster.sh: network namespaces, shaped veth links, mpirun
# over TCP): needs root and iproute2; without them they report a skip, not a pass
px_integration_test(it_cluster_quickstart 360)
px_integration_test(it_cluster_cut 180)
set_tests_properties(it_cluster_quickstart it_cluster_cut PROPERTIES SKIP_RETURN_CODE 77)

# The device checks (tests/gpu/): every kernel against its CPU twin, a composed training step
# and a benchmark. Built in every CUDA build; without a GPU they report a skip (exit 77), never
# a pass. tests/gpu/run.sh runs them (and the NCCL check under mpirun) on a GPU machine.
if(PX_HAVE_CUDA)
  add_executable(gpu_check ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_check.c)
  target_link_libraries(gpu_check PRIVATE px_nn px_comm px_aggregators CUDA::cublas)
  set_target_properties(gpu_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME gpu_check COMMAND gpu_check)
  set_tests_properties(gpu_check PROPERTIES TIMEOUT 600 LABELS gpu SKIP_RETURN_CODE 77)
  # each model's whole step through the trainer's device path, CPU vs CUDA, and its throughput
  add_executable(gpu_models ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_models.c)
  target_link_libraries(gpu_models PRIVATE px_nn)
  set_target_properties(gpu_models PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME gpu_models COMMAND gpu_models)
  set_tests_properties(gpu_models PROPERTIES TIMEOUT 600 LABELS gpu SKIP_RETURN_CODE 77)
endif()

# real process death under launch/mpirun.sh (--enable-recovery), over MPI and over shared memory
px_integration_test(it_death 600)
add_test(NAME it_death_shm COMMAND bash ${CMAKE_SOURCE_DIR}/tests/it_death.sh ${CMAKE_BINARY_DIR}
  ${CMAKE_SOURCE_DIR})
set_tests_properties(it_death_shm PROPERTIES TIMEOUT 600 LABELS integration
  ENVIRONMENT "${PX_SANITIZER_ENV};PX_TEST_TRANSPORT=SHM")
# the sharded parameter server: decisions, accuracy, LISA and codecs, a shard's death
px_integration_test(it_shards 600)
# tests whose deadlines or daemons do not share the machine well: run alone
set_tests_properties(it_death it_death_shm it_slurm it_cluster_quickstart it_cluster_cut it_resync
  it_shards PROPERTIES RUN_SERIAL TRUE)

# checks that need a tool the machine may lack (clang's UBSan, GCC's LeakSanitizer runtime):
# they exit 77 without it, which ctest reports as skipped
foreach(t it_ubsan_codec it_cli_leaks)
  px_integration_test(${t} 600)
  set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()

# ---- the sanitizer stage (cmake/sanitize.cmake, launch/sanitize.sh) --------------------------
# Under ASan + UBSan (build-asan/) CI runs every unit test and these integration tests (label
# sanitize): the one-process and MPI paths of the trainer, a hostile rank, codecs, federated
# rounds, LISA, stalls, state files, the data readers and the tools, within the stage's time
# budget (PX_SANITIZE=full launch/sanitize.sh runs every integration test under ASan).
if(PX_SANITIZE)
  foreach(t it_data it_cli it_aggregate it_state it_train_mpi it_hostile_rank it_lisa it_stall
            it_codec_train it_federated it_determinism it_split_check)
    set_property(TEST ${t} APPEND PROPERTY LABELS sanitize)
  endforeach()
endif()
if(PX_FUZZ)
  include(${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake)
endif()
# valgrind memcheck on a short one-process training run (label valgrind)
if(PX_VALGRIND)
  add_test(NAME valgrind_train
    COMMAND bash ${CMAKE_SOURCE_DIR}/launch/valgrind_train.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(valgrind_train PROPERTIES LABELS valgrind TIMEOUT 900)
endif()
