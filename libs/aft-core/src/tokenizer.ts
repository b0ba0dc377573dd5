/**
 * Character-level tokenizer over a fixed vocabulary: four special tokens, then newline and printable ASCII.
 * Fixed, so every checkpoint of every run shares it; it is saved inside checkpoints all the same, and a
 * checkpoint whose vocabulary differs is refused rather than silently mis-decoded.
 */
export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const UNK = 3;
const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>'] as const;

export interface TokenizerSpec {
  kind: 'char';
  vocab: string[];
}

export class CharTokenizer {
  readonly vocab: readonly string[];
  private readonly index: Map<string, number>;

  constructor(spec?: TokenizerSpec) {
    const chars = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
    const vocab = spec?.vocab ?? [...SPECIALS, ...chars];
    if (spec && (spec.kind !== 'char' || vocab.slice(0, 4).join() !== SPECIALS.join())) {
      throw new Error('unsupported tokenizer in checkpoint: expected a char tokenizer with <pad>,<bos>,<eos>,<unk>');
    }
    this.vocab = vocab;
    this.index = new Map(vocab.map((c, i) => [c, i]));
  }

  get size(): number {
    return this.vocab.length;
  }

  /** Characters outside the vocabulary map to <unk>. */
  encode(text: string): number[] {
    const out = new Array<number>(text.length);
    for (let i = 0; i < text.length; i++) out[i] = this.index.get(text[i]!) ?? UNK;
    return out;
  }

  /** Stops at <eos>; drops <pad> and <bos>. */
  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      if (id === EOS) break;
      if (id === PAD || id === BOS) continue;
      s += id === UNK ? '\ufffd' : (this.vocab[id] ?? '\ufffd');
    }
    return s;
  }

  spec(): TokenizerSpec {
    return { kind: 'char', vocab: [...this.vocab] };
  }
}
