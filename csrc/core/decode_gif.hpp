// GIF, first frame only, with the pixels TensorFlow's DecodeGif gives for that frame.
#pragma once

#include "core/image.hpp"

namespace pyimgdir {

void decode_gif(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out);

}  // namespace pyimgdir
