"""Generate simulated star-field FITS images with known star positions.

Each field is a SIZE x SIZE float32 image (ADU) of a flat sky background plus
stars with a circular Gaussian PSF, integrated over each pixel, with Poisson
(gain 1 e-/ADU) and Gaussian read noise. Headers carry a TAN WCS (0.5"/px,
slightly rotated, a different sky position per field), OBJECT, DATE-OBS,
EXPTIME, GAIN, SATURATE and the simulation parameters.

Outputs, for field i (1-based) named kdg-field-NNNN:
  IMAGES/kdg-field-NNNN.fits       the image (what the pipeline reads)
  TRUTH/kdg-field-NNNN.truth.csv   columns x,y,flux,ra,dec: x, y in FITS pixel
                                   coordinates (1-based, the centre of the first
                                   pixel is 1.0, as SExtractor's X_IMAGE/Y_IMAGE),
                                   flux the star's total flux in ADU, ra/dec in
                                   degrees (ICRS) from the header's WCS
Stars are at least MIN_SEPARATION px apart and EDGE px from the border, so a
1.5 px match radius is unambiguous. Output is deterministic for a given seed.

Usage: python make_fields.py --images DIR --truth DIR [--count 24] [--size 256]
       [--seed 20240601] [--real-image PATH]
--real-image also copies a real FITS image (astropy's bundled SkyView M13
test image) into IMAGES as m13.fits with OBJECT added (it has no truth list).
"""

import argparse
import csv
import math
import os
import sys

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

FWHM_PX = 3.0  # PSF full width at half maximum, pixels
BACKGROUND_ADU = 100.0  # flat sky level, ADU per pixel
READ_NOISE_ADU = 5.0  # Gaussian read noise, ADU rms
FLUX_RANGE_ADU = (300.0, 30000.0)  # total star flux, log-uniform
STARS_RANGE = (25, 45)  # stars per field, uniform
MIN_SEPARATION = 8.0  # px between any two stars
EDGE = 8.0  # px from the image border
PIXEL_SCALE_DEG = 0.5 / 3600.0  # 0.5 arcsec per pixel
BASE_RA, BASE_DEC = 10.6847, 41.2690  # first field near M31, degrees


def pixel_integrated_gaussian(n, centre, sigma):
    """1-D Gaussian of unit integral integrated over pixels 0..n-1.

    centre is in 0-based pixel coordinates (pixel k spans k-0.5..k+0.5).
    Returns a float64 array of length n.
    """
    edges = np.arange(n + 1) - 0.5 - centre
    cdf = np.array([0.5 * (1.0 + math.erf(e / (sigma * math.sqrt(2.0)))) for e in edges])
    return np.diff(cdf)


def place_stars(rng, size, count):
    """Positions (0-based x, y) of up to count stars, MIN_SEPARATION apart."""
    placed = []
    tries = 0
    while len(placed) < count and tries < 100 * count:
        tries += 1
        x, y = rng.uniform(EDGE, size - 1 - EDGE, 2)
        if all((x - px) ** 2 + (y - py) ** 2 >= MIN_SEPARATION**2 for px, py in placed):
            placed.append((x, y))
    return placed


def field_wcs(index, size, rng):
    """A TAN WCS centred on the image, one sky position per field index."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
    w.wcs.crval = [BASE_RA + 0.25 * index, BASE_DEC + 0.05 * index]
    theta = math.radians(rng.uniform(-5.0, 5.0))
    # CDELT + a rotation PC matrix (not CD: wcstools reads CDELT for the
    # scale); RA increases to the left (east left, north up).
    w.wcs.cdelt = [-PIXEL_SCALE_DEG, PIXEL_SCALE_DEG]
    w.wcs.pc = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def make_field(index, size, seed):
    """Build field `index` (1-based). Returns (HDUList, truth rows)."""
    rng = np.random.default_rng([seed, index])
    sigma = FWHM_PX / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    positions = place_stars(rng, size, int(rng.integers(STARS_RANGE[0], STARS_RANGE[1] + 1)))
    lo, hi = (math.log(v) for v in FLUX_RANGE_ADU)
    model = np.full((size, size), BACKGROUND_ADU)
    stars = []
    for x, y in positions:
        flux = math.exp(rng.uniform(lo, hi))
        model += flux * np.outer(pixel_integrated_gaussian(size, y, sigma), pixel_integrated_gaussian(size, x, sigma))
        stars.append((x, y, flux))
    image = rng.poisson(model).astype(np.float64) + rng.normal(0.0, READ_NOISE_ADU, model.shape)
    wcs = field_wcs(index, size, rng)
    header = wcs.to_header()
    header["OBJECT"] = (f"KDG-FIELD-{index:04d}", "simulated star field")
    header["DATE-OBS"] = (f"2024-06-{1 + (index - 1) // 24 % 28:02d}T{(index - 1) % 24:02d}:00:00", "UTC start")
    header["EXPTIME"] = (60.0, "s")
    header["GAIN"] = (1.0, "e-/ADU")
    header["SATURATE"] = (65000.0, "ADU")
    header["BUNIT"] = "ADU"
    header["TELESCOP"] = "kubedag-sim"
    header["SIMSEED"] = (seed, "make_fields.py seed")
    header["SIMFWHM"] = (FWHM_PX, "PSF FWHM, px")
    header["SIMBACK"] = (BACKGROUND_ADU, "sky background, ADU")
    header["SIMNSTAR"] = (len(stars), "stars in the truth list")
    hdul = fits.HDUList([fits.PrimaryHDU(image.astype(np.float32), header=header)])
    # FITS pixel coordinates are 1-based: 0-based array index + 1.
    world = wcs.all_pix2world([[x, y] for x, y, _ in stars], 0) if stars else []
    truth = [(x + 1.0, y + 1.0, flux, ra, dec) for (x, y, flux), (ra, dec) in zip(stars, world)]
    return hdul, truth


def write_truth(path, rows):
    """Write truth rows (x, y, flux, ra, dec) as CSV with a header line."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "flux", "ra", "dec"])
        for x, y, flux, ra, dec in rows:
            w.writerow([f"{x:.4f}", f"{y:.4f}", f"{flux:.2f}", f"{ra:.7f}", f"{dec:.7f}"])


def copy_real_image(src, images_dir):
    """Copy the real M13 image with OBJECT set (it has no DATE-OBS)."""
    with fits.open(src) as h:
        hdu = fits.PrimaryHDU(h[0].data, header=h[0].header)
    for k in ("CHECKSUM", "DATASUM"):
        hdu.header.remove(k, ignore_missing=True)
    hdu.header["OBJECT"] = ("M13", "added by make_fields.py")
    hdu.header["HISTORY"] = "Real image: astropy's io/fits test data m13.fits (SkyView)."
    hdu.writeto(os.path.join(images_dir, "m13.fits"), overwrite=True)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="output directory for the FITS images")
    p.add_argument("--truth", required=True, help="output directory for the truth lists")
    p.add_argument("--count", type=int, default=24)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--real-image", help="path of astropy's m13.fits to include")
    a = p.parse_args(argv)
    if a.count < 1 or a.size < 4 * EDGE:
        p.error(f"--count must be >= 1 and --size >= {4 * EDGE:g} (got {a.count}, {a.size})")
    os.makedirs(a.images, exist_ok=True)
    os.makedirs(a.truth, exist_ok=True)
    for i in range(1, a.count + 1):
        hdul, truth = make_field(i, a.size, a.seed)
        name = f"kdg-field-{i:04d}"
        hdul.writeto(os.path.join(a.images, name + ".fits"), overwrite=True)
        write_truth(os.path.join(a.truth, name + ".truth.csv"), truth)
    if a.real_image:
        copy_real_image(a.real_image, a.images)
    print(f"make_fields: {a.count} fields ({a.size}x{a.size}) in {a.images}, truth in {a.truth}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
