# Shared build settings and helpers for every weft target.

# Warning flags, applied PRIVATE to each weft target.
add_library(weft_warnings INTERFACE)
add_library(weft::warnings ALIAS weft_warnings)
target_compile_options(weft_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wno-missing-field-initializers>)

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

# weft_add_library(<module> SOURCES ... DEPS ...): the internal library of one directory, target
# weft_internal_<module>, alias weft::internal::<module>. Always static (position-independent in a
# shared build, whose libweft/libweft_llm are made of these objects) and compiled with hidden
# visibility: only declarations marked WEFT_API leave a shared library.
function(weft_add_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target weft_internal_${module})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(weft::internal::${module} ALIAS ${target})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ${BUILD_SHARED_LIBS}
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  # Internal headers are included by module path ("scheduler/executor.h"), as in LevelDB.
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE weft::warnings ${ARG_PRIVATE_DEPS})
endfunction()

# weft_add_public_library(<target> EXPORT_NAME <name> PARTS <module>... [PUBLIC_DEPS ...]
#                         [PRIVATE_DEPS ...]): a library users link, weft::<name>, made of the
# objects of the internal libraries weft_internal_<module>. Static unless BUILD_SHARED_LIBS.
function(weft_add_public_library target)
  cmake_parse_arguments(ARG "" "EXPORT_NAME" "PARTS;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${target})
  add_library(weft::${ARG_EXPORT_NAME} ALIAS ${target})
  foreach(part ${ARG_PARTS})
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:weft_internal_${part}>)
  endforeach()
  # While the major version is 0 every minor release may change the ABI: libweft.so.0.2.
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  else()
    set(soversion ${PROJECT_VERSION_MAJOR})
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_EXPORT_NAME} VERSION ${PROJECT_VERSION}
    SOVERSION ${soversion} LINKER_LANGUAGE CXX)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
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
