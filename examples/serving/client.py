"""Query a keras-clip SavedModel served by TensorFlow Serving over REST (Python standard library only).

    python client.py classify cat.jpg dog.png
    python client.py encode_text "a photo of a cat" "a diagram"
    python client.py encode_image cat.jpg
    python client.py similarity --images cat.jpg dog.png --texts "a cat" "a dog"
    python client.py classify cat.jpg --print-request > request.json     # write the JSON body, send nothing

Requests use TF Serving's columnar format ({"signature_name": ..., "inputs": {...}}), which lets
`similarity` take different numbers of images and texts; image files travel as {"b64": ...}.
"""

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request

IMAGE_SIGNATURES = ("classify", "encode_image", "serving_default")


def image_value(path):
    """A file's bytes as TF Serving's JSON encoding of binary strings."""
    with open(path, "rb") as file:
        return {"b64": base64.b64encode(file.read()).decode("ascii")}


def build_request(signature, images=(), texts=()):
    """The JSON body of a predict request to `signature`."""
    inputs = {}
    if signature in IMAGE_SIGNATURES or signature == "similarity":
        inputs["image_bytes"] = [image_value(path) for path in images]
    if signature in ("encode_text", "similarity"):
        inputs["text"] = list(texts)
    return {"signature_name": signature, "inputs": inputs}


def predict(url, body, timeout=60):
    """POSTs `body` to `{url}:predict`; returns the decoded JSON answer or exits with the server's error."""
    request = urllib.request.Request(
        url + ":predict", data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        message = error.read().decode("utf-8", "replace")
        try:
            message = json.loads(message)["error"]
        except (ValueError, KeyError):
            pass
        raise SystemExit(f"TF Serving answered {error.code}: {message}")
    except urllib.error.URLError as error:
        raise SystemExit(f"Could not reach {url}: {error.reason} (is tensorflow_model_server running?)")


def show(signature, outputs, names):
    if signature == "classify" or (signature == "serving_default" and isinstance(outputs, dict)):
        for name, labels, probabilities in zip(names, outputs["top_labels"], outputs["top_probabilities"]):
            print(name + ": " + ", ".join(f"{label} {p:.3f}" for label, p in zip(labels, probabilities)))
    elif signature == "similarity":
        for name, row in zip(names, outputs):
            print(name + ": " + " ".join(f"{value:8.3f}" for value in row))
    else:
        for name, embedding in zip(names, outputs):
            print(f"{name}: [{', '.join(f'{v:.4f}' for v in embedding[:4])}, ...] ({len(embedding)} values)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("signature", choices=IMAGE_SIGNATURES + ("encode_text", "similarity"))
    parser.add_argument("values", nargs="*", help="image files (image signatures) or texts (encode_text)")
    parser.add_argument("--images", nargs="+", default=[], help="image files (similarity)")
    parser.add_argument("--texts", nargs="+", default=[], help="texts (similarity)")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/clip", help="the model's REST URL")
    parser.add_argument("--print-request", action="store_true", help="print the JSON body instead of sending it")
    args = parser.parse_args()

    images = args.images or (args.values if args.signature in IMAGE_SIGNATURES else [])
    texts = args.texts or (args.values if args.signature == "encode_text" else [])
    body = build_request(args.signature, images, texts)
    if args.print_request:
        json.dump(body, sys.stdout, indent=1)
        print()
        return
    outputs = predict(args.url, body)["outputs"]
    show(args.signature, outputs, texts if args.signature == "encode_text" else images)


if __name__ == "__main__":
    main()
