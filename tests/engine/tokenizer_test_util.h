#pragma once
// Shared by the tokenizer tests: loading a vocabulary from ../shared and reading text files.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "formats/gguf.h"
#include "test_paths.h"

namespace kiln::test {

inline std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_file) {
    return Tokenizer::from_gguf(GgufFile::open(model_path(model_file)));
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    return lines;
}

}  // namespace kiln::test
