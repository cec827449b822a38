# Cross-compiling for 64-bit ARM Linux with Debian's cross toolchain
# (g++-aarch64-linux-gnu); binaries run here under qemu-user (qemu-aarch64),
# which CMake, doctest's test discovery and ctest pick up as the emulator.
# Used by scripts/test-neon with -DKILN_KERNELS_ONLY=ON: the engine's libraries
# (sentencepiece, pcre2, httplib, ...) have no arm64 packages installed here.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Headers and libraries from the arm64 C library and libstdc++; packages may
# also come from the host, for header-only ones such as doctest.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# -L: the dynamic loader and shared libraries of the arm64 sysroot. The CPU model
# comes from QEMU_CPU in the environment (qemu's default when unset).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
