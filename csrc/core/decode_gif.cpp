#include "core/decode_gif.hpp"

namespace pyimgdir {

void decode_gif(const uint8_t*, size_t, const DecodeOptions&, Image&) {
    throw DecodeError("GIF decoding is not implemented yet");
}

}  // namespace pyimgdir
