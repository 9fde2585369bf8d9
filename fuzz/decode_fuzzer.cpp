// libFuzzer harness for the core's decode entry point (csrc/core/decode.cpp dispatching to
// the JPEG, PNG, GIF and BMP decoders). Every input is decoded as grayscale, RGB and RGBA;
// the RGB pass also runs with the options the pipeline uses (JPEG DCT downscaling, rows the
// resize skips), picked from the input's last byte so the fuzzer can reach them.
//
// The only acceptable outcomes are a decoded image of the announced size or a DecodeError;
// anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <string>

#include "core/decode.hpp"

namespace {

using pyimgdir::DecodeError;
using pyimgdir::DecodeOptions;
using pyimgdir::Image;

int scale_from_ctx(const void* ctx, int, int) { return *static_cast<const int*>(ctx); }

// Marks every other block of 20 rows as needed (long enough runs to be skipped).
bool alternate_rows(const void*, int height, int, uint8_t* mask) {
    for (int y = 0; y < height; ++y) mask[y] = ((y / 20) & 1) == 0;
    return true;
}

void check(const Image& img, int channels) {
    const size_t expected = static_cast<size_t>(img.height) * img.width * img.channels;
    if (img.height <= 0 || img.width <= 0 || img.channels != channels || img.pixels.size() != expected) {
        std::fprintf(stderr, "decoder returned a malformed image %dx%dx%d (%zu bytes)\n", img.height, img.width,
                     img.channels, img.pixels.size());
        std::abort();
    }
}

void run(const uint8_t* data, size_t size, const DecodeOptions& o, Image& img) {
    try {
        pyimgdir::decode_image(data, size, o, img);
        check(img, o.channels);
    } catch (const DecodeError&) {
        // the expected way to refuse an input
    }
    // Any other exception escapes and libFuzzer reports it as a crash.
}

// At scales 1/8 and 1/4 the fast path (decode_jpeg_eighth.cpp; at 1/4 off in the pipeline
// but kept exact) must agree with libjpeg byte for byte, or refuse the same files with the
// same message.
void same_without_fast_path(const uint8_t* data, size_t size, DecodeOptions o) {
    Image a, b;
    std::string ea, eb;
    o.jpeg_fast_eighth = o.jpeg_fast_quarter = true;
    try {
        pyimgdir::decode_image(data, size, o, a);
    } catch (const DecodeError& e) {
        ea = e.what();
    }
    o.jpeg_fast_eighth = o.jpeg_fast_quarter = false;
    try {
        pyimgdir::decode_image(data, size, o, b);
    } catch (const DecodeError& e) {
        eb = e.what();
    }
    if (ea != eb || (ea.empty() && (a.height != b.height || a.width != b.width || a.pixels != b.pixels))) {
        std::fprintf(stderr, "fast JPEG path differs from libjpeg: '%s' vs '%s'\n", ea.c_str(), eb.c_str());
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Mutated headers often claim large sizes; decoding megapixels of grey per input would
    // slow the fuzzer down 10x without reaching new code (the limit check itself is reached).
    static const int64_t kMaxPixels = int64_t(1) << 18;
    Image img;
    for (int channels : {1, 3, 4}) {
        DecodeOptions o;
        o.channels = channels;
        o.max_pixels = kMaxPixels;
        run(data, size, o, img);
    }
    if (size > 0) {
        const uint8_t knob = data[size - 1];
        DecodeOptions o;
        o.channels = 3;
        o.max_pixels = kMaxPixels;
        static const int kScales[4] = {1, 2, 4, 8};
        int scale = kScales[knob & 3];
        if (scale != 1) {
            o.choose_jpeg_scale = scale_from_ctx;
            o.scale_ctx = &scale;
        }
        if (knob & 4) o.rows_needed = alternate_rows;
        if (scale != 1 || (knob & 4)) run(data, size, o, img);
        if (scale == 8 || scale == 4) same_without_fast_path(data, size, o);
    }
    return 0;
}
