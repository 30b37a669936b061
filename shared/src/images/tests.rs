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

#[test]
fn a_thumbnail_made_while_checking_is_the_one_a_second_decode_would_make() {
    let picture = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let bytes = encode_png(&DynamicImage::ImageRgb8(picture), &[]).unwrap();
    let plain = CheckedImage::check(bytes.clone(), "the image").unwrap();
    let with_thumbnail = CheckedImage::check_with_thumbnail(bytes.clone(), "the image").unwrap();
    assert_eq!(plain.thumbnail(), None, "a plain check makes no thumbnail");
    assert_eq!(with_thumbnail, plain, "the image itself is the same");
    assert_eq!(with_thumbnail.bytes(), &bytes);
    let expected = make_thumbnail(&plain.decode().unwrap()).unwrap();
    assert_eq!(with_thumbnail.thumbnail(), Some(&expected));

    // A broken image is refused the same way either way.
    let truncated = bytes.slice(..bytes.len() / 2);
    let refusal = CheckedImage::check_with_thumbnail(truncated, "the model's image").unwrap_err();
    assert!(refusal.message().contains("damaged or truncated"), "{refusal}");
}
