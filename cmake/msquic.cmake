# Builds MsQuic (with its bundled quictls) as a static library into a cache outside the clone, keyed by
# MsQuic's version and every option that changes the build, and imports it as `msquic::static`.
# A warm cache makes rebuilding the addon a matter of seconds.

set(MSQUIC_SOURCE_DIR "${CMAKE_CURRENT_SOURCE_DIR}/deps/msquic/source")
file(READ "${CMAKE_CURRENT_SOURCE_DIR}/deps/msquic/VERSION" MSQUIC_VERSION)
string(STRIP "${MSQUIC_VERSION}" MSQUIC_VERSION)
if(NOT EXISTS "${MSQUIC_SOURCE_DIR}/CMakeLists.txt")
  message(FATAL_ERROR "MsQuic sources are missing: run `node scripts/fetch-msquic.mjs` (needs cargo).")
endif()

# MSQUIC_SANITIZE (set by the includer, e.g. "address,undefined") builds MsQuic with sanitizers.
set(MSQUIC_BUILD_TYPE "Release")
if(MSQUIC_SANITIZE)
  set(MSQUIC_BUILD_TYPE "RelWithDebInfo")
endif()

# -fvisibility=hidden keeps MsQuic's own symbols out of the addon's dynamic table from the start.
set(MSQUIC_C_FLAGS "-fvisibility=hidden")
if(MSQUIC_SANITIZE)
  string(APPEND MSQUIC_C_FLAGS " -fsanitize=${MSQUIC_SANITIZE} -fno-omit-frame-pointer")
endif()
# What a cross toolchain needs added (scripts/cross-toolchain.mjs: musl's headers under -Werror).
if(CMAKE_CROSSCOMPILING AND NODE_MSQUIC_CROSS_C_FLAGS)
  string(APPEND MSQUIC_C_FLAGS " ${NODE_MSQUIC_CROSS_C_FLAGS}")
endif()
# Everything that changes the produced archive goes into the cache key.
set(MSQUIC_OPTIONS
  -DCMAKE_BUILD_TYPE=${MSQUIC_BUILD_TYPE}
  -DQUIC_BUILD_SHARED=OFF
  -DQUIC_TLS_LIB=quictls
  -DQUIC_ENABLE_LOGGING=OFF
  -DQUIC_BUILD_TEST=OFF
  -DQUIC_BUILD_TOOLS=OFF
  -DQUIC_BUILD_PERF=OFF
  -DQUIC_EMBED_GIT_HASH=OFF
  # libnuma would make the addon depend on libnuma.so.1 at run time; keep it out.
  -DNUMA=NUMA-NOTFOUND
  "-DCMAKE_C_FLAGS=${MSQUIC_C_FLAGS}"
)
if(MSQUIC_SANITIZE MATCHES "thread")
  # MsQuic's pools recycle objects through free lists ThreadSanitizer cannot see; with them on,
  # every reuse of an address looks like a race.
  list(APPEND MSQUIC_OPTIONS -DQUIC_ENABLE_POOL_ALLOC=OFF)
endif()
# A cross build (a toolchain file, e.g. scripts/cross-toolchain.mjs's for a zig target) builds MsQuic
# with the same toolchain. MsQuic's CMake picks quictls' target from CMAKE_TARGET_ARCHITECTURE, which
# only its own build script sets: without it quictls configures itself for the host (x86 assembly in
# an arm64 build). ONEBRANCH makes it pass GNU_MACHINE as quictls' cross prefix (`<prefix>-gcc`, as
# upstream's cross builds do). These paths are not part of the key: the target and compiler are.
set(MSQUIC_CROSS_OPTIONS "")
set(MSQUIC_TARGET_KEY "")
if(CMAKE_CROSSCOMPILING)
  list(APPEND MSQUIC_CROSS_OPTIONS "-DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(MSQUIC_TARGET_ARCHITECTURE arm64)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|amd64|AMD64)$")
    set(MSQUIC_TARGET_ARCHITECTURE x64)
  else()
    message(FATAL_ERROR "MsQuic cross build: no quictls target for CMAKE_SYSTEM_PROCESSOR=${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  list(APPEND MSQUIC_CROSS_OPTIONS -DCMAKE_TARGET_ARCHITECTURE=${MSQUIC_TARGET_ARCHITECTURE} -DONEBRANCH=ON)
  if(GNU_MACHINE)
    list(APPEND MSQUIC_CROSS_OPTIONS "-DGNU_MACHINE=${GNU_MACHINE}")
  endif()
  # NODE_MSQUIC_CROSS_TRIPLE: zig's triple (with the glibc version), set by the generated toolchain file.
  set(MSQUIC_TARGET_KEY "${CMAKE_SYSTEM_NAME};${MSQUIC_TARGET_ARCHITECTURE};${NODE_MSQUIC_CROSS_TRIPLE};${CMAKE_C_COMPILER_TARGET}")
endif()
# Our patches to the sources (scripts/fetch-msquic.mjs records which it applied).
set(MSQUIC_PATCHES "")
if(EXISTS "${MSQUIC_SOURCE_DIR}/.node-msquic-patches")
  file(READ "${MSQUIC_SOURCE_DIR}/.node-msquic-patches" MSQUIC_PATCHES)
  string(STRIP "${MSQUIC_PATCHES}" MSQUIC_PATCHES)
endif()
set(MSQUIC_KEY_INPUT "${MSQUIC_VERSION};${MSQUIC_PATCHES};${MSQUIC_OPTIONS};${CMAKE_C_COMPILER_ID};${CMAKE_C_COMPILER_VERSION};${CMAKE_SYSTEM_PROCESSOR}")
if(CMAKE_CROSSCOMPILING)
  # Only then: host builds keep the key (and the cache entries) they had.
  string(APPEND MSQUIC_KEY_INPUT ";${MSQUIC_TARGET_KEY}")
endif()
string(SHA256 MSQUIC_KEY "${MSQUIC_KEY_INPUT}")
string(SUBSTRING "${MSQUIC_KEY}" 0 12 MSQUIC_KEY)
# Cross builds name their target in the folder too (msquic-<version>-aarch64-linux-musl-<key>).
if(CMAKE_CROSSCOMPILING AND NODE_MSQUIC_CROSS_TRIPLE)
  set(MSQUIC_KEY "${NODE_MSQUIC_CROSS_TRIPLE}-${MSQUIC_KEY}")
endif()

if(DEFINED ENV{NODE_MSQUIC_CACHE})
  set(MSQUIC_CACHE_ROOT "$ENV{NODE_MSQUIC_CACHE}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(MSQUIC_CACHE_ROOT "$ENV{XDG_CACHE_HOME}/node-msquic")
else()
  set(MSQUIC_CACHE_ROOT "$ENV{HOME}/.cache/node-msquic")
endif()
set(MSQUIC_PREFIX "${MSQUIC_CACHE_ROOT}/msquic-${MSQUIC_VERSION}-${MSQUIC_KEY}")

if(NOT EXISTS "${MSQUIC_PREFIX}/lib/libmsquic.a")
  message(STATUS "MsQuic ${MSQUIC_VERSION}: building into ${MSQUIC_PREFIX} (once per version and options)")
  string(RANDOM LENGTH 8 MSQUIC_TMP_SUFFIX)
  set(MSQUIC_WORK "${MSQUIC_CACHE_ROOT}/.work-${MSQUIC_KEY}-${MSQUIC_TMP_SUFFIX}")
  file(REMOVE_RECURSE "${MSQUIC_WORK}")
  cmake_host_system_information(RESULT MSQUIC_JOBS QUERY NUMBER_OF_LOGICAL_CORES)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${MSQUIC_SOURCE_DIR}" -B "${MSQUIC_WORK}/build"
      -G "${CMAKE_GENERATOR}" ${MSQUIC_OPTIONS} ${MSQUIC_CROSS_OPTIONS}
      "-DCMAKE_INSTALL_PREFIX=${MSQUIC_WORK}/install"
    RESULT_VARIABLE MSQUIC_RESULT)
  if(NOT MSQUIC_RESULT EQUAL 0)
    message(FATAL_ERROR "MsQuic configure failed (${MSQUIC_RESULT})")
  endif()
  # CMake exports CC and CXX while it configures this project; the build below must not see them, as a
  # standalone `cmake --build` would not: quictls' Configure takes CC from the environment, and for
  # arm64 prefixes it with the cross prefix (GNU_MACHINE), which makes a path that does not exist.
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=CC --unset=CXX
      ${CMAKE_COMMAND} --build "${MSQUIC_WORK}/build" --parallel ${MSQUIC_JOBS}
    RESULT_VARIABLE MSQUIC_RESULT)
  if(NOT MSQUIC_RESULT EQUAL 0)
    message(FATAL_ERROR "MsQuic build failed (${MSQUIC_RESULT})")
  endif()
  execute_process(
    COMMAND ${CMAKE_COMMAND} --install "${MSQUIC_WORK}/build"
    RESULT_VARIABLE MSQUIC_RESULT)
  if(NOT MSQUIC_RESULT EQUAL 0)
    message(FATAL_ERROR "MsQuic install failed (${MSQUIC_RESULT})")
  endif()
  # The addon calls the bundled OpenSSL itself (certificate generation, name checks): keep its headers.
  file(COPY "${MSQUIC_WORK}/build/_deps/opensslquic-build/quictls/include/openssl"
       DESTINATION "${MSQUIC_WORK}/install/include")
  # Publish atomically, so an interrupted build never leaves a half-filled cache entry behind.
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E rename "${MSQUIC_WORK}/install" "${MSQUIC_PREFIX}"
    RESULT_VARIABLE MSQUIC_RESULT)
  if(NOT MSQUIC_RESULT EQUAL 0)
    # Another build of the same version and options (a second clone or worktree) published first:
    # use that one.
    if(NOT EXISTS "${MSQUIC_PREFIX}/lib/libmsquic.a")
      message(FATAL_ERROR "could not publish the MsQuic build to ${MSQUIC_PREFIX}")
    endif()
    message(STATUS "MsQuic ${MSQUIC_VERSION}: another build published ${MSQUIC_PREFIX} first; using it")
  endif()
  file(REMOVE_RECURSE "${MSQUIC_WORK}")
else()
  message(STATUS "MsQuic ${MSQUIC_VERSION}: using cached build ${MSQUIC_PREFIX}")
endif()

add_library(msquic::static STATIC IMPORTED GLOBAL)
set_target_properties(msquic::static PROPERTIES
  IMPORTED_LOCATION "${MSQUIC_PREFIX}/lib/libmsquic.a"
  INTERFACE_INCLUDE_DIRECTORIES "${MSQUIC_PREFIX}/include"
  INTERFACE_COMPILE_DEFINITIONS "QUIC_BUILD_STATIC;QUIC_API_ENABLE_PREVIEW_FEATURES=1"
  INTERFACE_LINK_LIBRARIES "pthread;dl;atomic")
