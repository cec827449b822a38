#pragma once
// The filters and tests templates may name, looked up when a template is parsed
// so that an unknown name is a syntax error with a line number (as in jinja2).
#include <string_view>

#include "engine/jinja_ast.h"

namespace kiln::jinja {

FilterFunction find_filter(std::string_view name);
TestFunction find_test(std::string_view name);

}  // namespace kiln::jinja
