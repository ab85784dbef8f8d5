# Install rules, the CMake package (find_package(weft)), pkg-config files and the Debian package.
#
#   cmake --install build --prefix P      headers, libweft, libweft_llm, the weft command, and
#                                         P/lib/cmake/weft, P/lib/pkgconfig/weft{,-llm}.pc
#   scripts/package                       build/weft_<version>_<arch>.deb (CPack)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(WEFT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/weft)

install(TARGETS weft weft_llm EXPORT weftTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET weft_cli)
  install(TARGETS weft_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# The runtime's public headers (detail/ holds what their templates need; users do not include it).
install(DIRECTORY include/weft DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
# The engine's headers, under include/weft/ by module path (what <weft/llm.h> reaches).
set(WEFT_ENGINE_HEADERS
  llm/batch.h llm/chat_template.h llm/generator.h llm/gguf_convert.h llm/gguf_file.h llm/gguf_writer.h
  llm/kv_cache.h llm/llama_model.h llm/lora_adapter.h llm/model_config.h llm/model_weights.h llm/pretokenizer.h
  llm/safetensors.h llm/sampler.h
  llm/text_stream.h llm/tokenizer.h llm/utf8.h
  kernels/backend.h kernels/op_params.h kernels/tensor_type.h kernels/weight_view.h kernels/cpu/cpu_features.h kernels/cpu/fast_kernels.h
  kernels/cpu/fast_math.h kernels/cpu/kquant_math.h kernels/cpu/matmul.h kernels/cpu/thread_team.h)
foreach(header ${WEFT_ENGINE_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/weft/${dir})
endforeach()

install(EXPORT weftTargets NAMESPACE weft:: DESTINATION ${WEFT_CMAKE_DIR})
configure_package_config_file(cmake/weftConfig.cmake.in ${PROJECT_BINARY_DIR}/weftConfig.cmake
  INSTALL_DESTINATION ${WEFT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/weftConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/weftConfig.cmake ${PROJECT_BINARY_DIR}/weftConfigVersion.cmake
  DESTINATION ${WEFT_CMAKE_DIR})

# pkg-config: prefix found relative to the .pc file, so an unpacked package works where it lies.
set(WEFT_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH WEFT_PC_TO_PREFIX /${WEFT_PC_DIR} /)
string(REGEX REPLACE "/$" "" WEFT_PC_TO_PREFIX "${WEFT_PC_TO_PREFIX}")
# Static libraries need their dependencies on every link line (Requires); shared ones carry them.
if(BUILD_SHARED_LIBS)
  set(WEFT_PC_DEPS_FIELD Requires.private)
  set(WEFT_PC_DL "")
  set(WEFT_PC_LLM_REQUIRES "Requires: weft = ${PROJECT_VERSION}\nRequires.private: libpcre2-8")
else()
  set(WEFT_PC_DEPS_FIELD Requires)
  set(WEFT_PC_DL " -ldl")
  set(WEFT_PC_LLM_REQUIRES "Requires: weft = ${PROJECT_VERSION}, libpcre2-8")
endif()
configure_file(cmake/weft.pc.in ${PROJECT_BINARY_DIR}/weft.pc @ONLY)
configure_file(cmake/weft-llm.pc.in ${PROJECT_BINARY_DIR}/weft-llm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/weft.pc ${PROJECT_BINARY_DIR}/weft-llm.pc DESTINATION ${WEFT_PC_DIR})

# The Debian package: `cpack -G DEB` in the build directory (scripts/package).
set(CPACK_PACKAGE_NAME weft)
set(CPACK_PACKAGE_VENDOR "weft")
set(CPACK_PACKAGE_CONTACT "weft maintainers <weft@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 task-graph runtime and LLM engine: libraries, headers, the weft command")
set(CPACK_PACKAGE_DESCRIPTION "weft runs C++ task graphs (remote functions, actors, ObjectRefs) on a
work-stealing scheduler, embedded or across worker processes, and serves LLMs (GGUF models,
OpenAI-compatible server). This package holds the weft command, the libraries (weft::weft,
weft::llm), their headers, the CMake package and pkg-config files.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# The weft command's shared libraries, from dpkg-shlibdeps; then what building against the
# headers and libraries needs (the CMake package finds these through find_dependency).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libmsgpack-cxx-dev, libfmt-dev, libspdlog-dev, libzmq3-dev, cppzmq-dev, libpcre2-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake (>= 3.25)")
include(CPack)
