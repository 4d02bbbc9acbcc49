// What the GPU's copy engines do to device memory: move bytes between it
// and host memory, or fill it.  Copies on different streams may touch the
// same device bytes at once (NBD clients may overlap concurrent writes),
// which the hardware defines (each byte ends up from one of them) and C++
// does not.  So in a ThreadSanitizer build the device side goes through
// relaxed atomic words, and only the host side (the plugin's staging
// buffers, where a race is the plugin's bug) is checked.
#pragma once

#include <cstddef>

namespace fakecuda {

void engine_to_device(std::byte *dev, const std::byte *host, std::size_t n);
void engine_to_host(std::byte *host, const std::byte *dev, std::size_t n);
void engine_fill(std::byte *dev, unsigned char value, std::size_t n);

} // namespace fakecuda
