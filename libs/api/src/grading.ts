/**
 * Server-side grading of logged samples, for both ways in (tRPC `samples.log` and MLflow `log_table` uploads): a
 * sample that names a question the repository ships (`gsm8k-test-17`, `aqua-dev-3`: `@aft/aft-core/gold`) and
 * carries a completion but no `correct` is graded with aft-core's grader against that question's gold answer, so an
 * external run that logs only its generations gets accuracy and paired comparisons like the platform's own runs.
 * A sample that says `correct` is stored as sent; one for any other question is stored ungraded.
 */
import { goldAnswer } from '@aft/aft-core/gold';
import { grade } from '@aft/aft-core/grader';
import type { StoredSample } from '@aft/db';

let warned = false;

/** The gold answer, or null; a server without the data folder stores samples ungraded and says so once. */
function goldOf(questionId: string): string | null {
  try {
    return goldAnswer(questionId);
  } catch (e) {
    if (!warned) {
      warned = true;
      console.warn(
        `[grading] samples of shipped questions are stored ungraded: ${(e as Error).message} (set AFT_DATA_DIR)`,
      );
    }
    return null;
  }
}

/** `rows` with `correct`, `gold` and `extractedAnswer` filled in where the server can grade them. */
export function gradeSamples<T extends StoredSample>(rows: readonly T[]): T[] {
  return rows.map((r) => {
    // an empty completion is graded too (wrong): left ungraded, it would drop out of accuracy and flatter the run
    if (typeof r.correct === 'boolean') return r;
    const gold = goldOf(r.questionId);
    if (gold === null) return r;
    const g = grade(r.completion, gold);
    return { ...r, gold, extractedAnswer: g.extracted, correct: g.correct };
  });
}
