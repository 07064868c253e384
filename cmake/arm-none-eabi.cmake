# CMake toolchain file: firmware_core for the RP2040's core (Cortex-M0+, Thumb, no FPU)
# with Debian's gcc-arm-none-eabi and newlib. Shared by ci/cross-arm.sh (footprint) and
# the QEMU test image (firmware_core/arm/); the root CMakeLists.txt then builds
# firmware_core only, with cJSON from Debian's source package (cmake/debian_cjson.cmake).
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR cortex-m0plus)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_SIZE arm-none-eabi-size)
# No OS to link a test program against while CMake probes the compiler.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# -g costs no flash (debug sections are not loaded) and lets a fault's PC name its line.
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m0plus -mthumb -ffunction-sections -fdata-sections -g")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections")
# The firmware is measured as it would ship: -Os, unless the caller picks another type.
set(CMAKE_BUILD_TYPE MinSizeRel CACHE STRING "")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
