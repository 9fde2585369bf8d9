// The 1/8-scale JPEG decode (jpeg_downscale picking 1/8) straight from the entropy-coded
// data. At 1/8 libjpeg-turbo needs only each block's DC term (and, for 4:2:0 chroma, the few
// AC terms of its 2x2 IDCT), yet its Huffman loop still spends most of the time walking the
// luma AC codes it throws away. This decoder walks them with a multi-symbol skip table and
// rebuilds the pixels with libjpeg-turbo's own arithmetic, so the output is identical.
//
// The same decoder also handles 1/4 exactly (2x2 IDCTs, and 4x4 for 4:2:0 chroma, which then
// needs no upsampling), but there it must decode every AC value, and libjpeg-turbo's own
// Huffman loop and SIMD IDCTs are faster: the pipeline keeps 1/4 on libjpeg
// (DecodeOptions::jpeg_fast_quarter).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/image.hpp"

struct jpeg_decompress_struct;

namespace pyimgdir {

// `cinfo` has read the header (up to and including SOS) and had jpeg_calc_output_dimensions
// run with scale 1/8 or 1/4; `scan` .. `end` is the rest of the file, starting at the first
// byte of entropy-coded data. Returns true with `out` filled (channels 1, 3 or 4) exactly as
// libjpeg-turbo decodes the file at that scale. Returns false, with `out` unspecified, for
// any file it does not handle (progressive, arithmetic, 12-bit, CMYK/RGB/YCCK, sampling
// factors above 2, several scans; at 1/4 also any layout where a component needs
// upsampling, such as 4:2:2 and 4:4:0) and for entropy-coded data that is anything but clean
// (a bad code, data running out, restart markers out of order, coefficients outside the
// range where the arithmetic matches libjpeg-turbo's SIMD IDCTs): the caller then uses
// libjpeg, which also produces libjpeg's warnings-and-all behaviour for damaged files.
//
// With `region` (in scaled pixels, inside the output) only that part is produced: the MCU
// rows below it are never decoded, and `out` holds just the region (as libjpeg gives it
// with jpeg_crop_scanline and jpeg_skip_scanlines: in the layouts handled there is no fancy
// upsampling, so a pixel depends only on its own MCU).
//
// Region decodes of scans of 256 KiB and more (large photos) keep checkpoints (bit position
// and DC predictors every 4 or 16 MCUs of each MCU row walked, jpeg_entropy.hpp): a later
// region of the same file (the next epoch's crop) starts each of its MCU rows at the
// checkpoint left of it and stops at its right edge, instead of walking every row from the
// top of the image.
bool decode_jpeg_eighth(const jpeg_decompress_struct& cinfo, const uint8_t* scan, const uint8_t* end,
                        int channels, Image& out, const DecodeRegion* region = nullptr);

}  // namespace pyimgdir
