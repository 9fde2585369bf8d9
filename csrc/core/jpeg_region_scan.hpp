// A crop of a baseline JPEG rewritten as a smaller JPEG that holds only the MCUs libjpeg
// needs for it, so that libjpeg Huffman-decodes the crop and not every MCU row above it and
// every MCU beside it.
//
// libjpeg can only walk a scan without restart markers from its first MCU: for a crop it
// entropy-decodes every MCU of every row down to the crop's bottom (jpeg_skip_scanlines and
// jpeg_crop_scanline spare only the IDCT, upsampling and colour conversion), most of the
// image for random-resized crops, where the crop's own MCUs are a fraction of it.
// With the entropy-data checkpoints (jpeg_entropy.hpp) the start of any MCU is found by
// walking at most index_step() - 1 MCUs from a checkpoint; the MCUs of each row of the crop
// are then copied bit for bit into a new scan, and only the first DC difference of each
// component in each row is re-encoded (its predictor changes). Header segments are copied
// with the frame's size changed.
//
// The new file spans the crop's MCU columns, starting at the column libjpeg's
// jpeg_crop_scanline starts at and ending where its cropped rows end (so the upsampler
// sees the same left and right edges), and the crop's MCU rows, plus the MCU row above or
// below where fancy upsampling of 4:2:0 chroma reads into it. Decoded with the same region
// calls, libjpeg gives the same pixels: same coefficients, same edges.
#pragma once

#include <cstdint>
#include <vector>

#include "core/image.hpp"

struct jpeg_decompress_struct;

namespace pyimgdir {

struct RegionScan {
    std::vector<uint8_t> jpeg;  // the smaller file
    int y = 0, x = 0;           // its top-left pixel in the original image
};

// `ci` has read the header of `file` (up to and including SOS) and had
// jpeg_calc_output_dimensions run at scale 1, 1/2 or 1/4; `scan` .. `end` is the rest of the
// file, from the first byte of entropy-coded data. Returns true with `out` filled (`y`, `x`
// in output pixels at that scale) when the crop `region` (output pixels) is worth rewriting
// and the file qualifies: one interleaved baseline Huffman scan, 8-bit, one or three components with
// sampling factors up to 2, no restart markers, clean entropy data down to the region's last
// MCU row, a DC difference the file's own DC table can encode, and checkpoints available
// (kept or recorded now: the first crop of a file walks every MCU row down to the region),
// and cropped rows not exactly 2 samples wide in a horizontally subsampled component (there
// libjpeg picks its upsampler from the whole image's width). Returns false otherwise; the
// caller then decodes the original.
bool region_scan(const jpeg_decompress_struct& ci, const uint8_t* file, const uint8_t* scan, const uint8_t* end,
                 const DecodeRegion& region, RegionScan& out);

}  // namespace pyimgdir
