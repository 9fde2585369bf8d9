// Format sniffing and dispatch: picks the decoder from the file's magic bytes, as
// TensorFlow's decode_image does, never from the extension.
#pragma once

#include "core/image.hpp"

namespace pyimgdir {

ImageFormat sniff_format(const uint8_t* data, size_t size);

// Decodes `data` into `out` with `opts.channels` channels. Throws DecodeError.
void decode_image(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out);

// The image's (height, width): from the header for JPEG, by decoding for other formats.
void image_dimensions(const uint8_t* data, size_t size, int channels, int64_t max_pixels, int& height, int& width);

// Reads a whole file into `buf` (reusing its capacity). Throws DecodeError naming the
// OS reason (the caller adds the path).
void read_file(const std::string& path, std::vector<uint8_t>& buf);

// Colour conversions shared by decoders whose libraries do not do them.
// libpng's rgb_to_gray with TensorFlow's coefficients (0.299, 0.587): (9797 R + 19234 G + 3737 B) >> 15.
uint8_t rgb_to_gray(uint8_t r, uint8_t g, uint8_t b);
// Pillow's RGB -> L (Convert.c, L24): (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
inline uint8_t pillow_gray(uint8_t r, uint8_t g, uint8_t b) {
    return static_cast<uint8_t>((19595u * r + 38470u * g + 7471u * b + 0x8000u) >> 16);
}

}  // namespace pyimgdir
