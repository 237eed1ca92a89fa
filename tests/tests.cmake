# tests.cmake - every test of the project, run by ctest (launch/test.sh).
#
# Unit tests: tests/test_<module>.c, cmocka, one executable each.
# Integration tests: shell scripts in tests/ that drive the real binaries (trainer, aggregate,
# mpirun); they get the build directory as $1 and the source directory as $2.

file(GLOB PX_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
foreach(src ${PX_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE phalanx PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS unit
    ENVIRONMENT "PX_SOURCE_DIR=${CMAKE_SOURCE_DIR};PX_BUILD_DIR=${CMAKE_BINARY_DIR}")
endforeach()

# px_integration_test(NAME SCRIPT TIMEOUT_S): tests/SCRIPT BUILD_DIR SOURCE_DIR
function(px_integration_test name script timeout)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/${script} ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${timeout} LABELS integration)
endfunction()

file(GLOB PX_INTEGRATION_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/it_*.sh)
foreach(script ${PX_INTEGRATION_SCRIPTS})
  get_filename_component(name ${script} NAME_WE)
  get_filename_component(file ${script} NAME)
  px_integration_test(${name} ${file} 600)
endforeach()
