// The edit page's progressive parts: show only the fields the chosen mode reads, paint a mask
// on a canvas over the image, and send it as the form's `mask` file at the image's own size.
// Without this script the form still works; only painting needs it.
"use strict";

(function () {
  const form = document.getElementById("edit-form");
  const modeSelect = document.getElementById("edit-mode");
  if (!form || !modeSelect) {
    return;
  }
  const stage = document.getElementById("edit-stage");
  const maskCanvas = document.getElementById("mask-canvas");
  const previewCanvas = document.getElementById("preview-canvas");
  const tools = document.getElementById("mask-tools");
  const brushSize = document.getElementById("brush-size");
  const eraseButton = document.getElementById("erase");
  const clearButton = document.getElementById("clear-mask");
  const maskFile = document.getElementById("mask-file");
  const uploadInput = document.getElementById("upload-image");
  const scriptError = document.getElementById("edit-script-error");

  // The mask is drawn opaque and shown half transparent by the stylesheet, so overlapping
  // strokes do not darken; only the alpha channel matters when the mask is exported.
  const STROKE_COLOUR = "rgb(255, 45, 111)";

  let regionOffered = false;
  let canvasReady = maskCanvas !== null && maskCanvas.width > 0 && previewCanvas === null;
  let painted = false;
  let erasing = false;
  let lastPoint = null;
  let submitting = false;

  function showError(message) {
    if (scriptError) {
      scriptError.textContent = message;
      scriptError.hidden = message === "";
    }
  }

  // Fields the mode does not read are hidden and disabled, so they are not sent either: a
  // prompt typed for inpaint must not reach a background removal that takes none.
  function applyMode() {
    const option = modeSelect.options[modeSelect.selectedIndex];
    const offered = (option.dataset.offers || "").split(" ").filter(Boolean);
    const required = (option.dataset.requires || "").split(" ").filter(Boolean);
    form.querySelectorAll("[data-field]").forEach(function (element) {
      const name = element.dataset.field;
      const shown = offered.includes(name);
      element.hidden = !shown;
      element.classList.toggle("required", required.includes(name));
      element.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !shown;
      });
    });
    regionOffered = offered.includes("region");
    updatePainting();
  }

  function updatePainting() {
    const painting = regionOffered && canvasReady;
    if (maskCanvas) {
      maskCanvas.hidden = !painting;
    }
    if (tools) {
      tools.hidden = !painting;
    }
  }

  // Pointer positions in the canvas's own pixels: the canvas is shown scaled to the page.
  function canvasPoint(event) {
    const box = maskCanvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * maskCanvas.width) / box.width,
      y: ((event.clientY - box.top) * maskCanvas.height) / box.height,
    };
  }

  // The brush size is in screen pixels, so it feels the same on a small and a large image.
  function brushWidth() {
    const box = maskCanvas.getBoundingClientRect();
    const scale = box.width > 0 ? maskCanvas.width / box.width : 1;
    return Number(brushSize ? brushSize.value : 40) * scale;
  }

  function strokeTo(point) {
    const context = maskCanvas.getContext("2d");
    context.globalCompositeOperation = erasing ? "destination-out" : "source-over";
    context.strokeStyle = STROKE_COLOUR;
    context.fillStyle = STROKE_COLOUR;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.lineWidth = brushWidth();
    const from = lastPoint || point;
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(point.x, point.y);
    context.stroke();
    if (!lastPoint) {
      context.beginPath();
      context.arc(point.x, point.y, context.lineWidth / 2, 0, 2 * Math.PI);
      context.fill();
    }
    lastPoint = point;
    if (!erasing) {
      painted = true;
      maskCanvas.dataset.painted = "true";
    }
  }

  function clearMask() {
    if (!maskCanvas) {
      return;
    }
    maskCanvas.getContext("2d").clearRect(0, 0, maskCanvas.width, maskCanvas.height);
    painted = false;
    maskCanvas.dataset.painted = "false";
  }

  // Whether anything painted is left after erasing.
  function maskHasPaint() {
    if (!painted) {
      return false;
    }
    const pixels = maskCanvas.getContext("2d").getImageData(0, 0, maskCanvas.width, maskCanvas.height).data;
    for (let index = 3; index < pixels.length; index += 4) {
      if (pixels[index] > 0) {
        return true;
      }
    }
    return false;
  }

  // The mask as the core takes it: an opaque PNG of the image's size, white where painted
  // (the region to change) and black elsewhere.
  function maskBlob() {
    const out = document.createElement("canvas");
    out.width = maskCanvas.width;
    out.height = maskCanvas.height;
    const context = out.getContext("2d");
    context.drawImage(maskCanvas, 0, 0);
    context.globalCompositeOperation = "source-in";
    context.fillStyle = "#fff";
    context.fillRect(0, 0, out.width, out.height);
    context.globalCompositeOperation = "destination-over";
    context.fillStyle = "#000";
    context.fillRect(0, 0, out.width, out.height);
    return new Promise(function (resolve) {
      out.toBlob(resolve, "image/png");
    });
  }

  if (maskCanvas) {
    maskCanvas.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) {
        return;
      }
      event.preventDefault();
      maskCanvas.setPointerCapture(event.pointerId);
      lastPoint = null;
      strokeTo(canvasPoint(event));
    });
    maskCanvas.addEventListener("pointermove", function (event) {
      if (lastPoint && maskCanvas.hasPointerCapture(event.pointerId)) {
        strokeTo(canvasPoint(event));
      }
    });
    const endStroke = function () {
      lastPoint = null;
    };
    maskCanvas.addEventListener("pointerup", endStroke);
    maskCanvas.addEventListener("pointercancel", endStroke);
  }

  if (eraseButton) {
    eraseButton.addEventListener("click", function () {
      erasing = !erasing;
      eraseButton.setAttribute("aria-pressed", erasing ? "true" : "false");
    });
  }
  if (clearButton) {
    clearButton.addEventListener("click", clearMask);
  }

  // An upload is drawn on the preview canvas (no object URL, so the page's content policy
  // needs no blob: images), and the mask canvas takes the picture's own size.
  if (uploadInput && previewCanvas && maskCanvas) {
    uploadInput.addEventListener("change", function () {
      const file = uploadInput.files && uploadInput.files[0];
      canvasReady = false;
      clearMask();
      if (!file) {
        stage.hidden = true;
        updatePainting();
        return;
      }
      createImageBitmap(file, { imageOrientation: "none" })
        .then(function (bitmap) {
          previewCanvas.width = bitmap.width;
          previewCanvas.height = bitmap.height;
          maskCanvas.width = bitmap.width;
          maskCanvas.height = bitmap.height;
          previewCanvas.getContext("2d").drawImage(bitmap, 0, 0);
          bitmap.close();
          stage.hidden = false;
          canvasReady = true;
          showError("");
          updatePainting();
        })
        .catch(function () {
          stage.hidden = true;
          updatePainting();
          showError("This browser cannot open that file to paint on it. Send it anyway to see what is wrong with it.");
        });
    });
  }

  form.addEventListener("submit", function (event) {
    if (submitting) {
      event.preventDefault();
      return;
    }
    if (!regionOffered || !canvasReady || !maskFile || maskFile.disabled || !maskHasPaint()) {
      submitting = true;
      return;
    }
    // Files cannot be set on a form being submitted, so stop, attach the painted mask to the
    // `mask` file field, then send the form as the browser would have.
    event.preventDefault();
    submitting = true;
    maskBlob()
      .then(function (blob) {
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], "mask.png", { type: "image/png" }));
        maskFile.files = transfer.files;
        form.submit();
      })
      .catch(function () {
        submitting = false;
        showError("This browser cannot attach the painted mask. Upload a mask image or describe the region instead.");
      });
  });

  modeSelect.addEventListener("change", applyMode);
  // Back-navigation can restore the form with the page; start from what it shows.
  window.addEventListener("pageshow", function () {
    submitting = false;
  });
  applyMode();
})();
