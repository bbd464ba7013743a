"""Transformers builds a tiny randomly initialised BERT from a config (no download), runs
it, and a word-level tokenizer made in place; on a visible GPU the model runs there."""

import glob
import sys

import torch
import transformers
from transformers import BertConfig, BertModel

print("transformers", transformers.__version__, "torch", torch.__version__)
config = BertConfig(
    vocab_size=32,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
)
model = BertModel(config).eval()
ids = torch.tensor([[1, 5, 7, 2]])
with torch.no_grad():
    hidden = model(input_ids=ids).last_hidden_state
assert hidden.shape == (1, 4, 16), hidden.shape

from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402 - a transformers dependency

vocab = {"[UNK]": 0, "hello": 1, "jetson": 2}
tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]")
assert fast("hello jetson world")["input_ids"] == [1, 2, 0]
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
    sys.exit(0)
with torch.no_grad():
    on_gpu = model.cuda()(input_ids=ids.cuda()).last_hidden_state
assert torch.allclose(on_gpu.cpu(), hidden, atol=1e-4)
print("transformers gpu ok")
