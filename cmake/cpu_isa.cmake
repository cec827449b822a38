# One translation unit per (ISA x kernel family): files named *_avx2.cpp,
# *_avxvnni.cpp, *_avx512.cpp (x86) and *_neon.cpp (AArch64: NEON + the dotprod
# extension's sdot) are compiled with their own flags and chosen at run time,
# so the binary never needs -march=native. On the other architecture those
# files compile without flags to a stub that returns no table.
set(_kiln_x86 OFF)
set(_kiln_aarch64 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(_kiln_x86 ON)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(_kiln_aarch64 ON)
endif()
get_target_property(_kiln_kernel_sources kiln_kernels SOURCES)
foreach(src ${_kiln_kernel_sources})
  if(_kiln_x86 AND src MATCHES "_avx2\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  elseif(_kiln_x86 AND src MATCHES "_avxvnni\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavxvnni")
  elseif(_kiln_x86 AND src MATCHES "_avx512\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c")
  elseif(_kiln_aarch64 AND src MATCHES "_neon\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
  endif()
endforeach()
