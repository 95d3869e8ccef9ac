# Dependencies of a PENSIEVE_KERNELS_ONLY build (gguf, tensor, backend and their tests), made without any
# library built for the target: a cross build finds none of the host's. What those rooms use is either
# header-only (nlohmann_json, and fmt in its header-only mode), taken from the host's include directory
# through a folder that holds just those two, or GoogleTest, built from Debian's source package.
set(PENSIEVE_HOST_INCLUDE_DIR "/usr/include" CACHE PATH "Where the host's fmt/ and nlohmann/ headers are")
set(PENSIEVE_GTEST_SOURCE_DIR "/usr/src/googletest" CACHE PATH "GoogleTest sources (Debian package googletest)")

# Only these two folders: the whole host include directory would shadow the target's C library headers.
set(header_only_dir "${CMAKE_BINARY_DIR}/header-only")
file(MAKE_DIRECTORY "${header_only_dir}")
foreach(dir fmt nlohmann)
  if(NOT EXISTS "${PENSIEVE_HOST_INCLUDE_DIR}/${dir}")
    message(FATAL_ERROR "${PENSIEVE_HOST_INCLUDE_DIR}/${dir} is missing (scripts/install-deps.sh installs it)")
  endif()
  file(CREATE_LINK "${PENSIEVE_HOST_INCLUDE_DIR}/${dir}" "${header_only_dir}/${dir}" SYMBOLIC)
endforeach()

add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${header_only_dir}"
  INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${header_only_dir}")

if(PENSIEVE_TESTS)
  if(NOT EXISTS "${PENSIEVE_GTEST_SOURCE_DIR}/CMakeLists.txt")
    message(FATAL_ERROR "${PENSIEVE_GTEST_SOURCE_DIR} is missing (apt-get install googletest)")
  endif()
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  # Defines GTest::gtest and GTest::gtest_main, the names find_package(GTest) gives the native build.
  add_subdirectory("${PENSIEVE_GTEST_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/googletest" EXCLUDE_FROM_ALL SYSTEM)
  target_compile_options(gtest PRIVATE -Wno-restrict)  # GCC 12's false alarm inside gtest.cc's UrlEncode
endif()
