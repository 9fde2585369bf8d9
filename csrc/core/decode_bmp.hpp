// BMP, decoded as TensorFlow's DecodeBmp does (the variants it accepts, same pixels).
#pragma once

#include "core/image.hpp"

namespace pyimgdir {

void decode_bmp(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out);

}  // namespace pyimgdir
