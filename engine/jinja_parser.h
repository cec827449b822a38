#pragma once
#include <string_view>

#include "engine/jinja_ast.h"

namespace kiln::jinja {

// Parses template text into statements. Throws jinja::Error (Syntax) with the
// line of the offending token for any error, including unknown filters/tests,
// unknown tags and nesting deeper than the parser allows.
Body parse_template(std::string_view source);

}  // namespace kiln::jinja
