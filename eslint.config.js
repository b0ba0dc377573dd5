// Lint for the whole monorepo. Module boundaries are the layers of docs/architecture.md, enforced:
// aft-core trains and knows nothing of databases, queues, HTTP or React; the web bundle never imports TensorFlow.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';
import reactHooks from 'eslint-plugin-react-hooks';
import prettier from 'eslint-config-prettier';

const serverOnly = ['@prisma/*', 'pg', 'bullmq', 'ioredis', 'next', 'next/*', 'react', 'react-dom', '@trpc/*'];

const DEP_CONSTRAINTS = [
  {
    sourceTag: 'type:ml',
    onlyDependOnLibsWithTags: ['type:ml'],
    bannedExternalImports: [...serverOnly, '@tanstack/*', 'uplot'],
  },
  {
    sourceTag: 'type:data',
    onlyDependOnLibsWithTags: ['type:data'],
    bannedExternalImports: ['@tensorflow/*', 'next', 'react', '@trpc/*', 'bullmq'],
  },
  {
    // shared schemas and types only: no I/O of any kind
    sourceTag: 'type:contract',
    onlyDependOnLibsWithTags: ['type:contract'],
    bannedExternalImports: ['@tensorflow/*', '@prisma/*', 'pg', 'next', 'react', 'bullmq', 'ioredis'],
  },
  {
    // libs/queue: the job contract and the BullMQ producer that enqueues it
    sourceTag: 'type:queue',
    onlyDependOnLibsWithTags: ['type:contract'],
    bannedExternalImports: ['@tensorflow/*', '@prisma/*', 'pg', 'next', 'react'],
  },
  {
    // libs/storage: the artifact store (filesystem, S3); bytes only, no database, queue or UI
    sourceTag: 'type:storage',
    onlyDependOnLibsWithTags: ['type:storage'],
    bannedExternalImports: [...serverOnly, '@tensorflow/*'],
  },
  {
    sourceTag: 'type:sdk',
    onlyDependOnLibsWithTags: ['type:contract'],
    bannedExternalImports: ['@tensorflow/*', '@prisma/*', 'pg', 'next', 'react', 'bullmq'],
  },
  {
    sourceTag: 'type:api',
    onlyDependOnLibsWithTags: ['type:data', 'type:contract', 'type:queue', 'type:storage'],
    bannedExternalImports: ['@tensorflow/*', 'next', 'react'],
  },
  {
    sourceTag: 'scope:web',
    onlyDependOnLibsWithTags: ['type:api', 'type:contract', 'type:data', 'type:queue', 'type:storage'],
    bannedExternalImports: ['@tensorflow/*'],
  },
  {
    sourceTag: 'scope:worker',
    onlyDependOnLibsWithTags: ['type:ml', 'type:contract', 'type:sdk', 'type:queue', 'type:storage'],
    bannedExternalImports: ['@prisma/*', 'pg', 'next', 'react'],
  },
  {
    sourceTag: 'scope:tools',
    onlyDependOnLibsWithTags: [
      'type:ml',
      'type:contract',
      'type:sdk',
      'type:data',
      'type:api',
      'type:queue',
      'type:storage',
    ],
  },
];

// Statement shapes, not single words, so that prose such as "update the run" is not taken for SQL.
const SQL_TEXT = String.raw`/^\s*(select\s[\s\S]*\bfrom\s|insert\s+into\s|update\s+\S+\s+set\s|delete\s+from\s|with\s+\S+\s+as\s*\(|(begin|commit|rollback|savepoint|set\s+local|lock\s+table)\b)/i`;
const NO_SQL_IN_API = [
  { selector: `TemplateElement[value.raw=${SQL_TEXT}]`, message: 'SQL belongs in libs/db behind a named function' },
  { selector: `Literal[value=${SQL_TEXT}]`, message: 'SQL belongs in libs/db behind a named function' },
  {
    // `fn(ctx.db.pool)` hands the pool to libs/db; `ctx.db.pool.query(…)`, `prisma.run.find…` would use it here
    selector: 'MemberExpression > MemberExpression.object[property.name=/^(pool|prisma)$/]',
    message: 'libs/api passes the Db handle to @aft/db functions; it does not query through it',
  },
  {
    selector: "MemberExpression > Identifier.object[name='prisma']",
    message: 'libs/api passes the Db handle to @aft/db functions; it does not query through it',
  },
  {
    selector:
      'MemberExpression[property.name=/^[$](queryRaw|executeRaw|queryRawUnsafe|executeRawUnsafe|transaction)$/]',
    message: 'libs/api passes the Db handle to @aft/db functions; it does not query through it',
  },
];

const boundaryOptions = (allow) => ({
  enforceBuildableLibDependency: false,
  // libs/aft-core's TensorFlow-free training vocabulary, for every layer (docs/architecture.md, "Layers")
  // aft-core's TensorFlow-free entries (libs/aft-core/test/tf-free-entries.test.ts keeps them so)
  allow: ['@aft/aft-core/spec', '@aft/aft-core/stats', '@aft/aft-core/grader', '@aft/aft-core/gold', ...allow],
  depConstraints: DEP_CONSTRAINTS,
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/.next/**',
      '**/dist/**',
      '**/generated/**',
      '**/next-env.d.ts',
      'e2e/artifacts/**',
      '.nx/**',
      'tmp/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': ['error', boundaryOptions([])],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Tests may enter the fixtures' doors (`@aft/db/testing`, `@aft/api/testing`) to stand up real services.
    files: ['**/test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', boundaryOptions(['@aft/db/testing', '@aft/api/testing'])],
    },
  },
  {
    files: ['apps/web/**/*.tsx', 'apps/web/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
    },
  },
  {
    // libs/db owns all SQL (docs/architecture.md, "Layers"): the API calls named data functions and never holds a
    // pool, a Prisma client or a statement. tools/test/lint-rules.test.ts shows each of these firing.
    files: ['libs/api/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'pg', message: 'libs/api reaches Postgres only through @aft/db functions' }],
          patterns: [{ group: ['@prisma/*'], message: 'libs/api reaches Postgres only through @aft/db functions' }],
        },
      ],
      'no-restricted-syntax': ['error', ...NO_SQL_IN_API],
    },
  },
  prettier,
);
