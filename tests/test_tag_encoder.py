"""TagEncoder: the bag-of-tags feature of §3.4 as a module."""
import io

import numpy as np
import pytest
import torch

from gifemo.data.tags import TagVocabulary
from gifemo.models.tag_encoder import TagEncoder

TRAIN = [["happy", "dog"], ["Happy", "cat"], ["sad"], ["happy", "happy", "sad"]]


def _brute_force(vocab_tags, tag_lists):
    """Counts of vocabulary tags per GIF (after lower/strip), divided by the row's L2 norm."""
    out = np.zeros((len(tag_lists), len(vocab_tags)))
    for i, tags in enumerate(tag_lists):
        for t in tags:
            t = " ".join(t.split()).lower()
            if t in vocab_tags:
                out[i, vocab_tags.index(t)] += 1
        n = np.sqrt((out[i] ** 2).sum())
        if n > 0:
            out[i] /= n
    return out


def test_forward_is_l2_normalised_counts():
    vocab = TagVocabulary.build(TRAIN, min_fraction=0.5)  # happy (3/4), sad (2/4)
    enc = TagEncoder(vocab)
    assert enc.output_dim == len(vocab) == 2
    query = [["happy", "HAPPY ", "sad", "unknown"], ["dog"], []]
    y = enc(query)
    assert y.dtype == torch.float32 and y.shape == (3, 2)
    np.testing.assert_allclose(y.numpy(), _brute_force(vocab.tags, query), rtol=1e-6)
    np.testing.assert_array_equal(y[1:].numpy(), 0.0)  # no vocabulary tag -> zero row
    assert not list(enc.parameters())


def test_state_dict_carries_vocabulary_and_loads_weights_only():
    enc = TagEncoder(TagVocabulary.build(TRAIN, min_fraction=0.0))
    buf = io.BytesIO()
    torch.save(enc.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = TagEncoder(TagVocabulary(["zzz"]))
    other.load_state_dict(state)
    assert other.vocabulary.tags == enc.vocabulary.tags
    q = [["cat", "sad"]]
    torch.testing.assert_close(other(q), enc(q))
    again = TagEncoder.from_dict(enc.to_dict())
    assert again.vocabulary.tags == enc.vocabulary.tags


def test_rejects_non_vocabulary():
    with pytest.raises(TypeError, match="TagVocabulary"):
        TagEncoder(["happy"])
    with pytest.raises(ValueError, match="not a bag-of-tags"):
        TagEncoder.from_dict({"kind": "bert"})
