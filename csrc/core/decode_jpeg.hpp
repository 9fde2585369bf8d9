// JPEG through libjpeg-turbo, configured as TensorFlow configures it (JDCT_IFAST, fancy
// upsampling, CMYK converted by hand) so the pixels are bit-identical to tf.io.decode_image.
#pragma once

#include "core/image.hpp"

namespace pyimgdir {

void decode_jpeg(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out);

// The (height, width) in the header, without decoding pixels. Throws DecodeError.
void jpeg_dimensions(const uint8_t* data, size_t size, int& height, int& width);

}  // namespace pyimgdir
