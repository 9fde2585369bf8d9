#include "core/decode_bmp.hpp"

namespace pyimgdir {

void decode_bmp(const uint8_t*, size_t, const DecodeOptions&, Image&) {
    throw DecodeError("BMP decoding is not implemented yet");
}

}  // namespace pyimgdir
