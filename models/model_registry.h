#pragma once
// Architectures kiln can run, keyed on general.architecture.
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "models/model.h"

namespace kiln {

// Reads general.architecture and builds that model's weights on the placement.
// Throws ModelError naming the architecture and the supported ones.
std::unique_ptr<TransformerModel> create_model(const GgufFile& file, const Placement& placement);
std::vector<std::string> supported_architectures();

}  // namespace kiln
