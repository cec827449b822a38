#pragma once
// `kiln info --devices`: the GPUs kiln can run on, numbered as --device takes them.

namespace kiln::cli {

void print_devices(bool as_json);

}  // namespace kiln::cli
