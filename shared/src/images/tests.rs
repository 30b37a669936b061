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
fn a_thumbnail_shows_the_picture_shrunk() {
    // Red on the left, blue on the right, 896x1152 (a model's portrait size).
    let picture = image::RgbImage::from_fn(896, 1152, |x, _| {
        if x < 448 { image::Rgb([220, 20, 20]) } else { image::Rgb([20, 20, 220]) }
    });
    let thumbnail = make_thumbnail(&DynamicImage::ImageRgb8(picture)).unwrap();
    let decoded = image::load_from_memory_with_format(&thumbnail, ImageFormat::Jpeg).unwrap().to_rgb8();
    assert_eq!((decoded.width(), decoded.height()), (199, THUMBNAIL_SIDE));
    let close =
        |pixel: [u8; 3], expected: [u8; 3]| pixel.iter().zip(expected).all(|(got, want)| got.abs_diff(want) < 24);
    assert!(close(decoded.get_pixel(20, 128).0, [220, 20, 20]), "{:?}", decoded.get_pixel(20, 128));
    assert!(close(decoded.get_pixel(180, 128).0, [20, 20, 220]), "{:?}", decoded.get_pixel(180, 128));

    // A picture smaller than a thumbnail keeps its size.
    let small = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(100, 64, image::Rgb([1, 2, 3])));
    let decoded = image::load_from_memory(&make_thumbnail(&small).unwrap()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (100, 64));
}

#[test]
fn a_models_png_is_checked_by_its_chunks_without_decoding() {
    let picture = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let bytes = encode_png(&DynamicImage::ImageRgb8(picture), &[("Software", "test")]).unwrap();
    let checked = CheckedImage::check_model_output(bytes.clone(), "the model's image").unwrap();
    assert_eq!(checked, CheckedImage::check(bytes.clone(), "the image").unwrap(), "the same image as a full check");
    assert_eq!(checked.bytes(), &bytes);

    let refused =
        |bytes: Vec<u8>| CheckedImage::check_model_output(Bytes::from(bytes), "the model's image").unwrap_err();
    // Truncated anywhere after the header.
    for cut in [bytes.len() / 2, bytes.len() - 1, bytes.len() - 12] {
        let refusal = refused(bytes[..cut].to_vec());
        assert!(refusal.message().contains("damaged or truncated"), "cut at {cut}: {refusal}");
    }
    // One bit changed in the pixel data, and in the text chunk.
    for position in [bytes.len() / 2, 60] {
        let mut damaged = bytes.to_vec();
        damaged[position] ^= 0x01;
        let refusal = refused(damaged);
        assert!(refusal.message().contains("damaged or truncated"), "changed at {position}: {refusal}");
    }
    // Bytes after the end.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(b"trailing");
    assert!(refused(longer).message().contains("damaged or truncated"));
    // A JPEG answer is decoded as an upload is: a truncated one fails too.
    let mut jpeg = Vec::new();
    DynamicImage::ImageRgb8(image::RgbImage::from_pixel(128, 128, image::Rgb([9, 9, 9])))
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
    assert!(CheckedImage::check_model_output(Bytes::from(jpeg.clone()), "x").is_ok());
    assert!(refused(jpeg[..jpeg.len() / 2].to_vec()).message().contains("damaged or truncated"));
}
