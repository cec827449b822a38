#pragma once
// Pre-tokenizer regex splitting for byte-level BPE, on PCRE2 (UTF + UCP, so \p{L}, \s
// and friends are Unicode-aware as in Hugging Face's tokenizers).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

class RegexSplitter {
public:
    // Compiles each pattern; throws TokenizerError naming the pattern that fails.
    explicit RegexSplitter(const std::vector<std::string>& patterns);
    ~RegexSplitter();
    RegexSplitter(RegexSplitter&&) noexcept;

    // Applies the patterns in order. Each one splits every piece so far into its matches
    // and the unmatched stretches between them (kept as pieces of their own, as llama.cpp
    // and Hugging Face's "Isolated" split do); a pattern sees one piece at a time, so
    // lookarounds and `$` stop at the piece's ends. Bytes that are not well-formed UTF-8
    // become one-byte pieces that no pattern sees.
    std::vector<std::string_view> split(std::string_view text) const;

private:
    struct Compiled;
    std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace kiln
