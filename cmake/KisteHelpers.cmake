# kiste_library(NAME SOURCES … PUBLIC_DEPS … PRIVATE_DEPS …)
#   One static library per part, alias kiste::NAME, public headers in NAME's include/.
function(kiste_library name)
  cmake_parse_arguments(K "" "DIR" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(kiste_${name} STATIC ${K_SOURCES})
  add_library(kiste::${name} ALIAS kiste_${name})
  target_include_directories(kiste_${name}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(kiste_${name} PUBLIC ${K_PUBLIC_DEPS} PRIVATE ${K_PRIVATE_DEPS})
endfunction()

# kiste_test(NAME SOURCES … DEPS … LABELS unit|root|e2e [RESOURCE_LOCK R])
#   One GoogleTest executable; each TEST becomes a ctest case carrying LABELS. Cases that share
#   a host-wide resource (a fixed cgroup name) take RESOURCE_LOCK, so `ctest -j` runs them one
#   at a time.
function(kiste_test name)
  if(KISTE_FUZZ)  # the fuzz build has no unit tests
    return()
  endif()
  cmake_parse_arguments(K "" "TIMEOUT;RESOURCE_LOCK" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${K_SOURCES})
  target_link_libraries(${name} PRIVATE ${K_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  if(NOT K_TIMEOUT)
    set(K_TIMEOUT 300)
  endif()
  set(lock)
  if(K_RESOURCE_LOCK)
    set(lock RESOURCE_LOCK ${K_RESOURCE_LOCK})
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${K_LABELS}" TIMEOUT ${K_TIMEOUT} ${lock})
endfunction()
