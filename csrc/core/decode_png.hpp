// PNG through libpng with TensorFlow's transforms (16-bit to high byte, palette and tRNS
// expansion, alpha dropped or added, libpng's rgb_to_gray with 0.299/0.587).
#pragma once

#include "core/image.hpp"

namespace pyimgdir {

void decode_png(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out);

}  // namespace pyimgdir
