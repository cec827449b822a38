#include "models/model_registry.h"

#include "formats/gguf_keys.h"
#include "models/llama.h"

namespace kiln {
namespace {

struct ArchEntry {
    const char* name;
    std::unique_ptr<TransformerModel> (*load)(const GgufFile&, const Placement&);
};

constexpr ArchEntry kArchitectures[] = {
    {"llama", load_llama},
};

}  // namespace

std::vector<std::string> supported_architectures() {
    std::vector<std::string> names;
    for (const auto& a : kArchitectures) names.emplace_back(a.name);
    return names;
}

std::unique_ptr<TransformerModel> create_model(const GgufFile& file, const Placement& placement) {
    std::optional<std::string> arch;
    try {
        arch = file.get_string(gguf_keys::kArchitecture);
    } catch (const GgufError& e) {
        throw ModelError(file_label(file) + ": " + e.what());
    }
    if (!arch) throw ModelError(file_label(file) + ": metadata key general.architecture is missing; is this a model file?");
    for (const auto& a : kArchitectures)
        if (*arch == a.name) return a.load(file, placement);
    std::string list;
    for (const auto& a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a.name);
    throw ModelError(file_label(file) + ": architecture \"" + *arch + "\" is not supported (supported: " + list + ")");
}

}  // namespace kiln
