#include "models/weights.h"

#include "formats/quant_traits.h"
#include "models/hparams.h"

namespace kiln {

TensorView tensor_view(const GgufTensorInfo& t) {
    const QuantTraits& qt = quant_traits(t.type);
    TensorView v;
    v.data = t.data;
    v.type = t.type;
    for (int i = 0; i < 4; ++i) v.ne[i] = t.ne[size_t(i)];
    v.nb[0] = qt.block_bytes;  // per block: quantized rows have no per-element stride
    v.nb[1] = size_t(t.ne[0] / qt.block_size) * qt.block_bytes;
    v.nb[2] = v.nb[1] * size_t(t.ne[1]);
    v.nb[3] = v.nb[2] * size_t(t.ne[2]);
    return v;
}

namespace {
std::string shape_str(const int64_t* ne, size_t n) {
    std::string s = "[";
    for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}
}  // namespace

Weight WeightBinder::bind(const GgufTensorInfo& t, std::initializer_list<int64_t> ne, Backend& backend) const {
    const std::string where = file_label(file_) + ": tensor " + t.name;
    const QuantTraits* qt = find_quant_traits(uint32_t(t.type));
    if (!qt || !qt->dequantize)
        throw ModelError(where + " has type " + std::to_string(uint32_t(t.type)) + ", which kiln cannot compute with");
    bool same = true;
    size_t i = 0;
    for (int64_t want : ne) same = same && t.ne[i++] == want;
    for (; i < 4; ++i) same = same && t.ne[i] == 1;
    if (!same) {
        const size_t n_have = std::max<size_t>(ne.size(), t.n_dims);
        throw ModelError(where + " has shape " + shape_str(t.ne.data(), n_have) + ", expected " +
                         shape_str(std::data(ne), ne.size()));
    }
    if (t.ne[0] % qt->block_size != 0)
        throw ModelError(where + " has rows of " + std::to_string(t.ne[0]) + " elements, not a multiple of the " +
                         qt->name + " block size " + std::to_string(qt->block_size));
    Weight w = backend.upload_weight(tensor_view(t));
    // A backend with its own copy (a GPU, or the CPU's repacked Q4_0) no longer
    // needs the file's pages: without this a 7B Q4_0 on the CPU holds both, twice its size.
    if (w.device != t.data) file_.release_pages(t.data, t.n_bytes);
    return w;
}

Weight WeightBinder::require(const std::string& name, std::initializer_list<int64_t> ne, Backend& backend) const {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (!t) throw ModelError(file_label(file_) + ": tensor " + name + " is missing; the file is incomplete or not this architecture");
    return bind(*t, ne, backend);
}

std::optional<Weight> WeightBinder::optional(const std::string& name, std::initializer_list<int64_t> ne, Backend& backend) const {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (!t) return std::nullopt;
    return bind(*t, ne, backend);
}

Weight WeightBinder::require_f32(const std::string& name, int64_t n, Backend& backend) const {
    Weight w = require(name, {n}, backend);
    if (w.type() != GgmlType::F32)
        throw ModelError(file_label(file_) + ": tensor " + name + " is " + quant_traits(w.type()).name + ", expected f32 (norm weights)");
    return w;
}

}  // namespace kiln
