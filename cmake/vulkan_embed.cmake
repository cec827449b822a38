# Writes SPIR-V file SPV as a C++ array kiln_spv_<NAME> of uint32 words in OUT.
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" n_hex)
math(EXPR n_words "${n_hex} / 8")
# SPIR-V is a stream of little-endian words; regroup the bytes of each word.
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "(([^,]*,){8})" "\\1\n" words "${words}")
file(WRITE ${OUT} "// Generated from ${NAME}.spv by cmake/vulkan_embed.cmake.\n#include <cstddef>\n#include <cstdint>\n"
  "extern const uint32_t kiln_spv_${NAME}[] = {\n${words}\n};\n"
  "extern const size_t kiln_spv_${NAME}_words = ${n_words};\n")
