# CUDA backend: kernels/cuda/*.cu (one file per op family) and the host side
# (*.cpp), for sm_80/86/89/90 plus PTX for newer GPUs. KILN_CUDA_ARCHS
# overrides the list (e.g. -DKILN_CUDA_ARCHS=90-real for a quick local build).
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(KILN_CUDA_ARCHS "80-real;86-real;89-real;90-real;90-virtual" CACHE STRING "CUDA architectures of the CUDA backend")
file(GLOB KILN_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/*.cu ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/*.cpp)
if(KILN_CUDA_SOURCES)
  add_library(kiln_cuda STATIC ${KILN_CUDA_SOURCES})
  # C++17 device code: CMake 3.25 knows no C++20 flag for nvcc.
  set_target_properties(kiln_cuda PROPERTIES CUDA_ARCHITECTURES "${KILN_CUDA_ARCHS}" CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_include_directories(kiln_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  # kiln_kernels for the shared reference helpers (rope angles) so CPU and CUDA
  # rotate by the same bits; CMake repeats the two static libraries on the link line.
  target_link_libraries(kiln_cuda PUBLIC kiln_formats kiln_kernels CUDA::cudart)
  target_compile_definitions(kiln_cuda PUBLIC KILN_HAVE_CUDA=1)
  # The kernels' host code is compiled by nvcc's host compiler: keep the warnings useful.
  target_compile_options(kiln_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wno-unused-parameter>)
  target_link_libraries(kiln_kernels PUBLIC kiln_cuda)
  if(KILN_CUDA_TRACE)
    target_compile_definitions(kiln_cuda PRIVATE KILN_CUDA_TRACE=1)
  endif()
endif()
