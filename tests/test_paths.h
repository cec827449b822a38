#pragma once
// Where tests find the shared test data (../shared beside the checkout, as in CI)
// and the built `kiln` binary. A missing folder is a test failure, not a skip.
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kiln::test {

inline std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("KILN_SHARED_DIR")) return env;
    std::filesystem::path p = std::filesystem::path(KILN_SOURCE_DIR) / ".." / "shared";
    if (!std::filesystem::is_directory(p))
        throw std::runtime_error("test data not found: expected " + p.string() +
                                 " (set KILN_SHARED_DIR to override)");
    return std::filesystem::weakly_canonical(p);
}

inline std::string model_path(const std::string& file) { return (shared_dir() / "models" / file).string(); }
inline std::string reference_path(const std::string& file) { return (shared_dir() / "reference" / file).string(); }
inline std::string kiln_binary() { return KILN_BINARY; }

}  // namespace kiln::test
