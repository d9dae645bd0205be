"""OpenAI's zero-shot recipe run on OpenAI's reference model (PyTorch), for parity tests.

`reference_class_embeddings` follows the `zeroshot_classifier` function of OpenAI's notebook
"Prompt Engineering for ImageNet": per class, tokenize every filled template with `clip.tokenize`
semantics, `encode_text`, L2-normalise, mean, L2-normalise. `reference_probabilities` is the
softmax of `logit_scale.exp() * normalised image features @ class embeddings.T`.
"""

import numpy as np

from tests.helpers.tokenizer_reference import reference_tokenize


def reference_class_embeddings(model, classnames, templates):
    """float32 numpy [len(classnames), embed_dim]."""
    import torch

    rows = []
    with torch.no_grad():
        for classname in classnames:
            texts = [template.format(classname) for template in templates]
            tokens = torch.from_numpy(reference_tokenize(texts, truncate=False).astype(np.int64))
            embeddings = model.encode_text(tokens)
            embeddings /= embeddings.norm(dim=-1, keepdim=True)
            embedding = embeddings.mean(dim=0)
            embedding /= embedding.norm()
            rows.append(embedding)
        return torch.stack(rows).numpy()


def reference_probabilities(model, images_nhwc, class_embeddings):
    """Class probabilities [N, C] of preprocessed NHWC images, float32 numpy."""
    import torch

    with torch.no_grad():
        images = torch.from_numpy(np.ascontiguousarray(np.transpose(images_nhwc, (0, 3, 1, 2))))
        features = model.encode_image(images)
        features /= features.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * features @ torch.from_numpy(class_embeddings).t()
        return logits.softmax(dim=-1).numpy()
