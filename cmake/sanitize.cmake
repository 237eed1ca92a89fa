# sanitize.cmake - the instrumented builds of CI's sanitizer stage (launch/sanitize.sh).
#
#   PX_SANITIZE=ON  every target with AddressSanitizer + UndefinedBehaviorSanitizer (gcc or
#                   clang); the tests run with leak checks and the suppressions of
#                   launch/lsan.supp (Open MPI's own libraries, nothing of ours)
#   PX_FUZZ=ON      also the libFuzzer targets of tests/fuzz/ (clang only; implies PX_SANITIZE):
#                   every object gets libFuzzer's coverage instrumentation
#   PX_VALGRIND=ON  registers the valgrind memcheck test of a short training run (a build
#                   without -march=native: valgrind does not decode AVX-512)
# Included by CMakeLists.txt before the first target, so that every target gets the flags.
option(PX_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(PX_FUZZ "Build the libFuzzer targets of tests/fuzz/ (clang; implies PX_SANITIZE)" OFF)
option(PX_VALGRIND "Register the valgrind memcheck test (launch/valgrind_train.sh)" OFF)

if(PX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PX_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang")
  endif()
  set(PX_SANITIZE ON)
  add_compile_options($<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link>)
endif()

# What every sanitized test runs with (ctest's ENVIRONMENT property; empty otherwise). Leaks are
# errors; UB stops the process with a stack trace.
set(PX_SANITIZER_ENV "")
if(PX_SANITIZE)
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-fsanitize=address,undefined;-fno-sanitize-recover=undefined;-fno-omit-frame-pointer;-g>")
  add_link_options(-fsanitize=address,undefined)
  set(PX_SANITIZER_ENV
    # fast_unwind_on_malloc=0: Open MPI's libraries have no frame pointers, so the fast
    # unwinder stops in them and a leak's stack would not show the library that made it
    "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:strict_string_checks=1:check_initialization_order=1"
    "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/launch/lsan.supp:print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
    # Open MPI and PMIx unload their components at finalize, before LeakSanitizer looks: their
    # allocations then have no library to be matched (and suppressed) by; keep them loaded
    "OMPI_MCA_mca_base_component_disable_dlclose=1"
    "PMIX_MCA_mca_base_component_disable_dlclose=1")
  message(STATUS "Phalanx sanitizers: address + undefined; fuzz targets: ${PX_FUZZ}")
endif()
