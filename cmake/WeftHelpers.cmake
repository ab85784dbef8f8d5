# Shared build settings and helpers for every weft target.

# Warning flags, applied PRIVATE to each weft target.
add_library(weft_warnings INTERFACE)
add_library(weft::warnings ALIAS weft_warnings)
target_compile_options(weft_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wno-missing-field-initializers)

# Sanitizers apply to the whole build so that every object is instrumented.
if(WEFT_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(WEFT_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(WEFT_SANITIZE STREQUAL "fuzz")
  # Everything instrumented for coverage and ASan; only fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT WEFT_SANITIZE STREQUAL "")
  message(FATAL_ERROR "WEFT_SANITIZE must be empty, 'address' or 'thread'")
endif()

# weft_add_library(<module> SOURCES ... DEPS ...): target weft_<module>, alias weft::<module>.
function(weft_add_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(weft_${module} ${ARG_SOURCES})
  add_library(weft::${module} ALIAS weft_${module})
  # Internal headers are included by module path ("scheduler/executor.h"), as in LevelDB.
  target_include_directories(weft_${module} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(weft_${module} PUBLIC ${ARG_DEPS} PRIVATE weft::warnings ${ARG_PRIVATE_DEPS})
endfunction()

# weft_add_test(<name> SOURCES ... [DEPS ...] [LABEL unit|integration|e2e|gpu|slow] [TIMEOUT s])
# One GoogleTest binary; each test case is registered with CTest and carries the label. One label
# per binary: gtest_discover_tests cannot carry a list through its PROPERTIES.
function(weft_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;LABEL" "SOURCES;DEPS" ${ARGN})
  if(NOT WEFT_BUILD_TESTS)
    return()
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main weft::warnings)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  # Tests find checked-in data, references and the default model under the source tree.
  target_compile_definitions(${name} PRIVATE WEFT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
endfunction()

# weft_add_fuzzer(<name> SOURCE file DEPS ...): a libFuzzer target, built only with WEFT_FUZZ
# (clang; scripts/fuzz builds them in build-fuzz/ and runs one).
function(weft_add_fuzzer name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPS" ${ARGN})
  if(NOT WEFT_FUZZ)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCE})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endfunction()
