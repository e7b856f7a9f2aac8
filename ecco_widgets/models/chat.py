"""Chat transcripts: ``lm.chat(messages, max_new_tokens=...)`` through the tokenizer's chat template.

The messages are rendered by the template (``apply_chat_template``, with the generation prompt when the model is to
answer), the assistant's answer is generated, and the whole transcript is analysed in one pass. The output marks
each turn (``out.turns``: system / user / assistant token ranges, the generated answer an assistant turn of its
own) and the template's special tokens (``out.special_mask``), and explains the answer's tokens by default.

A turn is the text that its message adds to the rendered transcript (the template's markers around it included);
a default system prompt that the template inserts (SmolLM2's, Llama 3's) is a system turn of its own.

>>> check_messages([{"role": "user", "content": "Hi"}])
[{'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from ..analysis.attribution import check_methods
from .generation import check_generation_options, generate_ids, pad_id
from ..analysis.features import FeatureRecorder
from ..errors import InputError

ROLES = ("system", "user", "assistant")
DEFAULT_MAX_NEW_TOKENS = 40
_EXAMPLE = ('[{"role": "system", "content": "You are concise."}, {"role": "user", "content": "Name a planet."}]')


def check_messages(messages: Any) -> list[dict[str, str]]:
    """The messages as [{"role", "content"}], or an InputError that shows the expected shape."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InputError(f"messages must be a non-empty list of {{'role', 'content'}} dicts, e.g. {_EXAMPLE}; got "
                         f"{type(messages).__name__}{'' if not isinstance(messages, str) else ' (a string)'}.")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"} or "role" not in message \
                or "content" not in message:
            raise InputError(f"messages[{i}] must be a dict with exactly the keys 'role' and 'content', e.g. "
                             f"{{'role': 'user', 'content': 'Hi'}}; got {message!r}.")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise InputError(f"messages[{i}] has role {role!r}; roles are {', '.join(ROLES)}.")
        if not isinstance(content, str) or not content.strip():
            raise InputError(f"messages[{i}] ({role}) has an empty or non-text content; give it some text.")
        checked.append({"role": role, "content": content})
    return checked


def special_ids(tokenizer: Any) -> set[int]:
    """The tokenizer's special tokens: its special ids and its added tokens marked special (<|im_start|>...)."""
    ids = set(getattr(tokenizer, "all_special_ids", None) or [])
    for token_id, added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if getattr(added, "special", False):
            ids.add(int(token_id))
    return ids


def render(tokenizer: Any, messages: list[dict[str, str]], generate: bool) -> tuple[str, list[tuple[str, int, int]]]:
    """(the rendered transcript, [(role, char start, char stop)]) for ``messages``; with ``generate`` the text ends
    with the assistant's generation prompt, which opens an assistant turn that runs to the end."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError("This tokenizer has no chat template (tokenizer.chat_template is None): the model was not "
                         "trained as a chat model. Use lm.generate(prompt) for plain text, or load the instruct "
                         "version of the model (its tokenizer has the template), or set tokenizer.chat_template "
                         "to a Jinja template.")

    def text_of(upto: int, prompt: bool) -> str:
        try:
            return tokenizer.apply_chat_template(messages[:upto], tokenize=False, add_generation_prompt=prompt)
        except Exception as error:  # jinja2's TemplateError (a template's own raise_exception), or a broken template
            if type(error).__module__.split(".")[0] not in ("jinja2", "transformers"):
                raise
            raise InputError(f"The tokenizer's chat template refused these messages: {type(error).__name__}: "
                             f"{error}. Check the roles and their order (some templates want user and assistant "
                             "turns to alternate, or no system message).") from None

    full = text_of(len(messages), generate)
    ends = [text_of(k + 1, False) for k in range(len(messages))]
    turns: list[tuple[str, int, int]] = []
    start, cursor = 0, 0
    for k, (message, prefix) in enumerate(zip(messages, ends)):
        grows = full.startswith(prefix)  # each message adds its turn after the ones before (most templates)
        # the content's last mention in the text this message adds: its own, not an earlier one in a default
        # system prompt ("... trained by Hugging Face" before a user's "Hugging Face")
        at = full.rfind(message["content"], cursor, len(prefix)) if grows else full.find(message["content"], cursor)
        if at < 0 and grows:  # a template that rewrites the content: the text the message adds is its turn
            turns.append((message["role"], start, len(prefix)))
            start = cursor = len(prefix)
            continue
        if at < 0:
            continue  # rewritten and re-rendered: nothing marks where this message is
        if not grows:  # a template that re-renders earlier turns: the content alone
            turns.append((message["role"], at, at + len(message["content"])))
            cursor = at + len(message["content"])
            continue
        begin = _header_start(full, start, at, message["role"], tokenizer)
        inserted = full[start:begin]
        if k == 0 and begin > start and "system" in inserted and message["role"] != "system":
            turns.append(("system", start, begin))  # the template's default system prompt
        turns.append((message["role"], begin, len(prefix)))
        start = cursor = len(prefix)
    if generate:
        turns.append(("assistant", max(start, cursor), len(full)))
    return full, turns


def _header_start(full: str, start: int, content_at: int, role: str, tokenizer: Any) -> int:
    """Where a message's turn begins: at the special token before the last mention of its role ahead of its
    content (``<|im_start|>user``, ``<|start_header_id|>user``), else where the text it adds begins."""
    mention = full.rfind(role, start, content_at)
    if mention <= start:
        return start
    specials = [str(t) for t in getattr(tokenizer, "all_special_tokens", None) or []]
    specials += [str(a) for a in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values()
                 if getattr(a, "special", False)]
    found = [full.rfind(s, start, mention) for s in set(specials) if s]
    found = [f for f in found if f >= start]
    return max(found) if found else start


def tokenize_turns(tokenizer: Any, text: str, char_turns: list[tuple[str, int, int]]) -> tuple[list[int],
                                                                                               list[dict], np.ndarray]:
    """Token ids of the rendered text, the turns as token ranges (a token belongs to the turn where it starts) and
    each token's first character (n_tokens,)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=bool(getattr(tokenizer, "is_fast",
                                                                                            False)))
    ids = [int(i) for i in encoded["input_ids"]]
    if "offset_mapping" in encoded:
        starts = np.array([a for a, _ in encoded["offset_mapping"]])
    else:  # a slow tokenizer: the character position of each token, from the text decoded so far
        starts = np.array([len(tokenizer.decode(ids[:i])) for i in range(len(ids))])
    turns = []
    for role, a, b in char_turns:
        first, stop = int(np.searchsorted(starts, a, "left")), int(np.searchsorted(starts, b, "left"))
        if stop > first:
            turns.append({"role": role, "start": first, "stop": stop})
    return ids, turns, starts


def chat(lm: Any, messages: Any, max_new_tokens: int | None = None, do_sample: bool = False,
         generation_kwargs: dict | None = None, **options: Any):
    """See :meth:`ecco_widgets.models.causal_lm.LanguageModel.chat`."""
    messages = check_messages(messages)
    tokenizer = lm._require_tokenizer()
    answer = messages[-1]["role"] != "assistant"
    if max_new_tokens is None:
        max_new_tokens = DEFAULT_MAX_NEW_TOKENS if answer else 0
    if isinstance(max_new_tokens, (bool, np.bool_)) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 0 or (answer and max_new_tokens == 0):
        raise InputError(f"max_new_tokens must be a positive integer (the length of the answer), got "
                         f"{max_new_tokens!r}; to analyse a transcript without answering, end it with an "
                         "assistant message.")
    if not answer and max_new_tokens:
        raise InputError("The transcript ends with an assistant message, so there is nothing to answer: drop "
                         "max_new_tokens to analyse it as it is, or end with a user message to get an answer.")
    generation_kwargs = check_generation_options(do_sample, generation_kwargs)
    try:  # every option checked before any work (a misspelt option would otherwise surface after the answer)
        inspect.signature(lm.analyze_ids).bind([0], **options)
    except TypeError as error:
        raise InputError(f"lm.chat got an option that lm.analyze does not take: {error}.") from None
    if options.get("attribution"):
        check_methods(options["attribution"], internals=True)
    if options.get("saes"):  # sites and widths, before generating
        FeatureRecorder(lm.spec, options["saes"], 1, check=False)
    text, char_turns = render(tokenizer, messages, generate=answer)
    ids, turns, starts = tokenize_turns(tokenizer, text, char_turns)
    lm.check_length(len(ids) + max_new_tokens, f"The transcript plus max_new_tokens={max_new_tokens}")
    n_input = len(ids)
    if answer:
        if not turns or turns[-1]["role"] != "assistant" or turns[-1]["stop"] != n_input:
            turns.append({"role": "assistant", "start": n_input, "stop": n_input})  # no generation prompt
        ids = generate_ids(lm, ids, max_new_tokens, do_sample, generation_kwargs, pad_id(tokenizer))
        turns[-1]["stop"] = len(ids)
        options.setdefault("targets", slice(n_input, None))  # the answer
    else:  # the last assistant message's content onwards
        content = int(np.searchsorted(starts, text.rfind(messages[-1]["content"]), "left"))
        options.setdefault("targets", slice(max(1, content), None))
    out = lm.analyze_ids(ids, n_input_tokens=n_input, **options)
    special = special_ids(tokenizer)
    out.turns = turns
    out.special_mask = np.array([i in special for i in ids], dtype=bool)
    return out
