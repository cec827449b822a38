#pragma once
// Binds GGUF tensors to a model by name, checking type and shape, with
// errors that name the file, the tensor and what was expected.
#include <initializer_list>
#include <optional>
#include <string>

#include "formats/gguf.h"
#include "kernels/backend.h"

namespace kiln {

// Host view of a GGUF tensor (zero-copy into the mapping).
TensorView tensor_view(const GgufTensorInfo& t);

class WeightBinder {
public:
    explicit WeightBinder(const GgufFile& file) : file_(file) {}

    // The tensor `name` with exactly shape ne (GGUF order: ne[0] is the row length),
    // uploaded to `backend`. Throws ModelError when missing, mis-shaped, or of a
    // type kiln cannot dequantize.
    Weight require(const std::string& name, std::initializer_list<int64_t> ne, Backend& backend) const;
    // As require(), but returns nullopt when the tensor is absent.
    std::optional<Weight> optional(const std::string& name, std::initializer_list<int64_t> ne, Backend& backend) const;
    // Norm weights must be F32 (the rms_norm op reads them directly).
    Weight require_f32(const std::string& name, int64_t n, Backend& backend) const;

private:
    Weight bind(const GgufTensorInfo& t, std::initializer_list<int64_t> ne, Backend& backend) const;
    const GgufFile& file_;
};

}  // namespace kiln
