use super::*;

fn png(width: u32, height: u32) -> Bytes {
    let image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([10, 200, 30])));
    encode_png(&image, &[("Software", "test")]).unwrap()
}

#[test]
fn a_sound_png_is_accepted_with_its_bytes_untouched() {
    let bytes = png(128, 96);
    let checked = CheckedImage::check(bytes.clone(), "the image").unwrap();
    assert_eq!(checked.size(), Size { width: 128, height: 96 });
    assert_eq!(checked.bytes(), &bytes);
    assert_eq!(checked.media_type(), "image/png");
}

#[test]
fn broken_images_are_refused_with_what_to_do() {
    let not_an_image = CheckedImage::check(Bytes::from_static(b"hello, this is text"), "the image").unwrap_err();
    assert!(not_an_image.message().contains("not a PNG, JPEG or WebP"), "{not_an_image}");

    let whole = png(256, 256);
    let truncated = CheckedImage::check(whole.slice(..whole.len() / 2), "the image").unwrap_err();
    assert!(truncated.message().contains("damaged or truncated"), "{truncated}");

    let empty = CheckedImage::check(Bytes::new(), "the mask").unwrap_err();
    assert!(empty.message().starts_with("the mask is empty"), "{empty}");

    let oversized = CheckedImage::check(Bytes::from(vec![0u8; MAX_UPLOAD_BYTES + 1]), "the image").unwrap_err();
    assert!(oversized.message().contains("the limit is 10 MiB"), "{oversized}");
}

#[test]
fn huge_dimensions_are_refused_from_the_header_alone() {
    // A PNG header claiming 20000x20000 pixels: refused before any pixel is decoded.
    let mut header = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut header, 20_000, 20_000);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        // Only a little of the data: the dimension check must come first.
        let _ = writer.write_image_data(&[0; 16]);
    }
    let refusal = CheckedImage::check(Bytes::from(header), "the image").unwrap_err();
    assert!(refusal.message().contains("20000x20000"), "{refusal}");
    assert!(refusal.message().contains("scale it down"), "{refusal}");
}

#[test]
fn thumbnails_are_small_jpegs() {
    let large = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(1024, 512, image::Rgba([0, 0, 255, 0])));
    let thumbnail = make_thumbnail(&large).unwrap();
    let decoded = image::load_from_memory_with_format(&thumbnail, ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (THUMBNAIL_SIDE, THUMBNAIL_SIDE / 2));
    // Fully transparent pixels flatten onto the neutral grey, not black.
    let pixel = decoded.to_rgb8().get_pixel(10, 10).0;
    assert!(pixel.iter().all(|channel| (190..=210).contains(channel)), "{pixel:?}");
}
