# fuzz.cmake - the libFuzzer targets (PX_FUZZ=ON: clang, with ASan + UBSan; see
# cmake/sanitize.cmake) and their ctest runs (label fuzz).
#
# Each run first replays the committed corpus tests/fuzz/corpus/<target>/ (valid examples, edge
# cases and the reproducers of past findings), then mutates it for PX_FUZZ_SECONDS. New inputs go
# to build/fuzz/corpus_<target>/, a crashing input to build/fuzz/<target>-crash-<sha1>; the
# source tree is never written. A crash, a leak, UB or an out-of-memory fails the test.

set(PX_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs under ctest")
set(PX_FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)

# px_fuzz_target(NAME LIBRARY): tests/fuzz/fuzz_NAME.c, corpus tests/fuzz/corpus/NAME
function(px_fuzz_target name lib)
  add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  target_link_libraries(fuzz_${name} PRIVATE ${lib})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PX_FUZZ_DIR})
  file(MAKE_DIRECTORY ${PX_FUZZ_DIR}/corpus_${name})
  add_test(NAME fuzz_${name}
    COMMAND fuzz_${name} -max_total_time=${PX_FUZZ_SECONDS} -rss_limit_mb=2048 -timeout=10
            -max_len=65536 -print_final_stats=1 -artifact_prefix=${PX_FUZZ_DIR}/${name}-
            ${PX_FUZZ_DIR}/corpus_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  math(EXPR timeout "${PX_FUZZ_SECONDS} * 3 + 60")
  set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT ${timeout}
    ENVIRONMENT "${PX_SANITIZER_ENV}")
endfunction()

px_fuzz_target(config px_runtime)
px_fuzz_target(wire px_comm)
px_fuzz_target(codec px_comm)
px_fuzz_target(npy px_runtime)
px_fuzz_target(idx px_runtime)
px_fuzz_target(state px_runtime)
add_custom_target(fuzz_targets DEPENDS fuzz_config fuzz_wire fuzz_codec fuzz_npy fuzz_idx fuzz_state)
