# One translation unit per (ISA x kernel family): files named *_avx2.cpp,
# *_avxvnni.cpp, *_avx512.cpp are compiled with their own flags and chosen at run time,
# so the binary never needs -march=native.
get_target_property(_kiln_kernel_sources kiln_kernels SOURCES)
foreach(src ${_kiln_kernel_sources})
  if(src MATCHES "_avx2\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  elseif(src MATCHES "_avxvnni\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavxvnni")
  elseif(src MATCHES "_avx512\\.cpp$")
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c")
  endif()
endforeach()
