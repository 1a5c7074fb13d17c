#!/usr/bin/env python3
"""Writes test/fixtures/tokenizer-metaspace/: a small SentencePiece-style BPE tokenizer.json (Metaspace '▁' for
spaces, <0xHH> byte fallback, <unk>/<s>/</s>), in the two layouts Hugging Face conversions use (LLaMA-2-style
normalizer Prepend+Replace; newer Metaspace pre-tokenizer), and expected.json with ids from an independent BPE
written here (lowest-rank merge first, byte fallback for pieces outside the vocabulary).

Usage: python3 scripts/make-metaspace-tokenizer.py [out_dir]   (standard library only)
"""
import json
import os
import sys

SP = '\u2581'
WORDS = ['The', 'Eiffel', 'Tower', 'is', 'located', 'in', 'the', 'city', 'of', 'Paris']
TEXTS = ['The Eiffel Tower is located in the city of', 'Paris!', 'the café in Paris', 'Tower  of\nParis', 'Eiffel']


def build():
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    for b in range(256):
        vocab[f'<0x{b:02X}>'] = len(vocab)
    merges = []
    chars = sorted({c for w in WORDS for c in w} | {SP})
    for c in chars:
        vocab.setdefault(c, len(vocab))
    # Each word: '▁' + letters merged left to right, so every listed word is one piece.
    for w in WORDS:
        piece = SP
        for c in w:
            pair = (piece, c)
            if ' '.join(pair) not in merges:
                merges.append(' '.join(pair))
            piece += c
            vocab.setdefault(piece, len(vocab))
    return vocab, merges


def bpe(word, vocab, ranks):
    parts = list(word)
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get((parts[i], parts[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
    ids = []
    for p in parts:
        if p in vocab:
            ids.append(vocab[p])
        else:
            ids.extend(vocab[f'<0x{b:02X}>'] for b in p.encode('utf-8'))
    return ids


def encode(text, vocab, ranks):
    # Prepend '▁', spaces become '▁'; the whole text is one BPE word (merges never cross a '▁' start here).
    return bpe(SP + text.replace(' ', SP), vocab, ranks)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'test/fixtures/tokenizer-metaspace'
    os.makedirs(out, exist_ok=True)
    vocab, merges = build()
    ranks = {tuple(m.split(' ')): i for i, m in enumerate(merges)}
    added = [
        {'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}
        for i, c in enumerate(['<unk>', '<s>', '</s>'])
    ]
    model = {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
             'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'vocab': vocab, 'merges': merges}
    post = {'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
            'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}}}
    legacy = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': {'type': 'Sequence', 'normalizers': [{'type': 'Prepend', 'prepend': SP},
                                                            {'type': 'Replace', 'pattern': {'String': ' '}, 'content': SP}]},
        'pre_tokenizer': None, 'post_processor': post,
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': SP}, 'content': ' '}, {'type': 'ByteFallback'}, {'type': 'Fuse'},
            {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': model,
    }
    pretok = {**legacy, 'normalizer': None,
              'pre_tokenizer': {'type': 'Metaspace', 'replacement': SP, 'prepend_scheme': 'first', 'split': False}}
    with open(os.path.join(out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(legacy, f, ensure_ascii=False)
    with open(os.path.join(out, 'tokenizer-metaspace-pretokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(pretok, f, ensure_ascii=False)
    exp = {'source': 'scripts/make-metaspace-tokenizer.py (independent BPE)',
           'encodings': [{'text': t, 'ids': encode(t, vocab, ranks)} for t in TEXTS]}
    with open(os.path.join(out, 'expected.json'), 'w', encoding='utf-8') as f:
        json.dump(exp, f, ensure_ascii=False, indent=1)
    for e in exp['encodings']:
        print(repr(e['text']), e['ids'])


if __name__ == '__main__':
    main()
