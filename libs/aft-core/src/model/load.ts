import { loadCheckpoint, type CheckpointMeta } from '../train/checkpoint';
import { Rng } from '../rng';
import { CharTokenizer } from '../tokenizer';
import { GPT } from './gpt';

/** A model and tokenizer restored from a checkpoint directory, for sampling and evaluation. */
export async function loadModel(dir: string): Promise<{ model: GPT; tok: CharTokenizer; meta: CheckpointMeta }> {
  const c = await loadCheckpoint(dir);
  const tok = new CharTokenizer(c.meta.tokenizer);
  const model = new GPT(c.meta.model, new Rng(0));
  model.setWeights(c.weights);
  return { model, tok, meta: c.meta };
}
