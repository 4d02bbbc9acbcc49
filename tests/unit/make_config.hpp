// Builds a Config from key=value pairs, as nbdkit would pass them.
#pragma once

#include "config/config.hpp"

#include <initializer_list>
#include <utility>

namespace vram::test {

using Params = std::initializer_list<std::pair<const char *, const char *>>;

inline Config make_config(Params params)
{
  ConfigBuilder b;
  for (auto [k, v] : params)
    b.set(k, v);
  return b.finish();
}

} // namespace vram::test
